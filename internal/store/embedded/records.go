package embedded

import "context"

// getOne reads one small record (a key, a schedule) from Pebble with read,
// which answers nil when there is none: then the error of notFound.
func getOne[T any](ctx context.Context, s *Store, read func() (*T, error), notFound func() error) (*T, error) {
	var rec *T
	err := s.readPebble(ctx, func() (err error) {
		rec, err = read()
		return err
	})
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, notFound()
	}
	return rec, nil
}

// listAll decodes every record under prefix, in key order.
func listAll[T any](ctx context.Context, s *Store, prefix string, decode func(name string, v []byte) (*T, error)) ([]*T, error) {
	var out []*T
	err := s.readPebble(ctx, func() error {
		return s.scan(prefix, func(name string, v []byte) error {
			rec, err := decode(name, v)
			if err != nil {
				return err
			}
			out = append(out, rec)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
