package spool

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// UnmarshalJSON reads a backoff object. A member given as a zero duration
// ("0s") is refused rather than taken for an absent one (which keeps the
// queue's or the server's default): a zero delay would be silently
// ignored. An immediate retry is asked for by the failed attempt itself
// (retry_in "0s"). Members are matched exactly, each at most once, and no
// other member is accepted.
func (b *Backoff) UnmarshalJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil // null leaves b as it is, as for any struct
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return fmt.Errorf("backoff must be an object such as {\"base\":\"5s\",\"max\":\"1h\"}")
	}
	var out Backoff
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		var to *Duration
		switch key {
		case "base":
			to = &out.Base
		case "max":
			to = &out.Max
		default:
			return fmt.Errorf("unknown field %q; a backoff has base and max", truncate(key, 40))
		}
		if seen[key] {
			return fmt.Errorf("backoff.%s is given twice", key)
		}
		seen[key] = true
		if err := dec.Decode(to); err != nil {
			return fmt.Errorf("backoff.%s: %w", key, err)
		}
		if *to == 0 {
			return fmt.Errorf("backoff.%s must be positive: a zero delay is not accepted (leave it out to keep the default; a failed attempt asks for an immediate retry with retry_in \"0s\")", key)
		}
	}
	if _, err := dec.Token(); err != nil {
		return err
	}
	*b = out
	return nil
}
