package sqs

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// form reads the parameters of a query-protocol request: flattened lists
// ("AttributeName.1"), maps ("Attribute.1.Name", "Attribute.1.Value") and
// lists of structures ("SendMessageBatchRequestEntry.1.Id").
type form url.Values

func (f form) str(name string) string { return url.Values(f).Get(name) }

func (f form) has(name string) bool {
	_, ok := f[name]
	return ok
}

// int reads an optional integer parameter.
func (f form) int(name string) (*int, error) {
	if !f.has(name) {
		return nil, nil
	}
	n, err := strconv.Atoi(f.str(name))
	if err != nil {
		return nil, invalidParameter("Value %q for parameter %s is invalid. Reason: must be an integer.", clip(f.str(name), 40), name)
	}
	return &n, nil
}

// indices lists the N of the parameters "prefix.N" and "prefix.N.*", in
// order.
func (f form) indices(prefix string) []int {
	seen := map[int]bool{}
	for k := range f {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		if n, err := strconv.Atoi(num); err == nil && n > 0 {
			seen[n] = true
		}
	}
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// list reads "prefix.1", "prefix.2", ...
func (f form) list(prefix string) []string {
	var out []string
	for _, n := range f.indices(prefix) {
		if v := f.str(prefix + "." + strconv.Itoa(n)); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// sub returns the parameters of "prefix.N." with that prefix cut.
func (f form) sub(prefix string, n int) form {
	p := prefix + "." + strconv.Itoa(n) + "."
	out := form{}
	for k, v := range f {
		if rest, ok := strings.CutPrefix(k, p); ok {
			out[rest] = v
		}
	}
	return out
}

// entries returns the structures "prefix.N.*", in order.
func (f form) entries(prefix string) []form {
	var out []form
	for _, n := range f.indices(prefix) {
		out = append(out, f.sub(prefix, n))
	}
	return out
}

// pairs reads a map flattened as "prefix.N.<key>" and "prefix.N.<value>".
func (f form) pairs(prefix, key, value string) map[string]string {
	var out map[string]string
	for _, e := range f.entries(prefix) {
		if out == nil {
			out = map[string]string{}
		}
		out[e.str(key)] = e.str(value)
	}
	return out
}

// messageAttributes reads "prefix.N.Name" and "prefix.N.Value.*".
func (f form) messageAttributes(prefix string) (map[string]MessageAttribute, error) {
	var out map[string]MessageAttribute
	for _, e := range f.entries(prefix) {
		if out == nil {
			out = map[string]MessageAttribute{}
		}
		a := MessageAttribute{DataType: e.str("Value.DataType")}
		if e.has("Value.StringValue") {
			s := e.str("Value.StringValue")
			a.StringValue = &s
		}
		if e.has("Value.BinaryValue") {
			b, err := base64.StdEncoding.DecodeString(e.str("Value.BinaryValue"))
			if err != nil {
				return nil, invalidParameter("The binary value of message attribute '%s' is not valid base64.", clip(e.str("Name"), 256))
			}
			a.BinaryValue = b
			if a.BinaryValue == nil {
				a.BinaryValue = []byte{}
			}
		}
		out[e.str("Name")] = a
	}
	return out, nil
}

// xw writes XML.
type xw struct{ b bytes.Buffer }

func (x *xw) open(name string, attrs ...string) {
	x.b.WriteByte('<')
	x.b.WriteString(name)
	for _, a := range attrs {
		x.b.WriteByte(' ')
		x.b.WriteString(a)
	}
	x.b.WriteByte('>')
}

func (x *xw) close(name string) {
	x.b.WriteString("</")
	x.b.WriteString(name)
	x.b.WriteByte('>')
}

func (x *xw) elem(name, text string) {
	x.open(name)
	_ = xml.EscapeText(&x.b, []byte(text))
	x.close(name)
}

// nameValues writes a map as repeated <elem><Name>k</Name><Value>v</Value></elem>,
// sorted by name.
func (x *xw) nameValues(elem, key, value string, m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		x.open(elem)
		x.elem(key, k)
		x.elem(value, m[k])
		x.close(elem)
	}
}

// messageAttributes writes message attributes as the query protocol does.
func (x *xw) messageAttributes(m map[string]MessageAttribute) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		a := m[k]
		x.open("MessageAttribute")
		x.elem("Name", k)
		x.open("Value")
		if a.StringValue != nil {
			x.elem("StringValue", *a.StringValue)
		}
		if a.BinaryValue != nil {
			x.elem("BinaryValue", base64.StdEncoding.EncodeToString(a.BinaryValue))
		}
		x.elem("DataType", a.DataType)
		x.close("Value")
		x.close("MessageAttribute")
	}
}
