// Package spool holds the wire types, job states and sentinel errors shared by
// the Spool server, its Go SDK and its storage backends. It has no
// dependencies beyond the standard library.
package spool
