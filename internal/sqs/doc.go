// Package sqs serves the Amazon SQS API (the AWS JSON 1.0 protocol and the
// older query protocol) over Spool's engine: an SQS queue is a Spool queue
// and an SQS message is a Spool job, so the HTTP API, the CLI, the
// dashboard and the Go SDK see what SQS clients send, and SQS clients
// receive what they enqueue. The handler decodes, validates, calls the
// same engine as the HTTP API and maps errors to SQS's codes; it holds no
// queue logic of its own. docs/sqs.md has the mapping table.
//
// The input and output structs name their fields as the SQS API names its
// members (QueueUrl, MessageId, MD5OfBody): encoding/json reads and writes
// them under those names in the JSON protocol.
package sqs
