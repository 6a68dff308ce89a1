//go:build !unix

package diskspace

import "errors"

// Stat cannot read a volume on this platform: the guard then admits all
// work (and says so once in the log).
func Stat(string) (Usage, error) {
	return Usage{}, errors.New("reading free disk space is not supported on this platform")
}
