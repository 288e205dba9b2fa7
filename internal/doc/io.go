package doc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
)

// known top-level keys: anything else is kept in Extra and written back.
var knownKeys = map[string]bool{
	"schema": true, "facts": true, "flows": true, "trace": true, "lab": true,
	"reach": true, "report": true, "merged": true, "errors": true,
}

type plain Document

// UnmarshalJSON reads the known sections and keeps the rest.
func (d *Document) UnmarshalJSON(b []byte) error {
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*d = Document(p)
	for k, v := range raw {
		if knownKeys[k] {
			continue
		}
		if d.Extra == nil {
			d.Extra = map[string]any{}
		}
		d.Extra[k] = v
	}
	return nil
}

// MarshalJSON writes the known sections and the passed-through ones.
func (d *Document) MarshalJSON() ([]byte, error) {
	b, err := marshalSections(d)
	if err != nil || len(d.Extra) == 0 {
		return b, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range d.Extra {
		vb, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		m[k] = vb
	}
	return json.Marshal(m)
}

// marshalSections writes the sections of d in field order, each encoded on
// its own, as encoding/json would write the whole. encoding/json builds an
// encoder for every type reachable from the value it is given, on first
// use: for the whole schema that cost every `tsim trace` 0.3 ms of its
// 10 ms budget, while a trace document only holds facts, flows and traces.
func marshalSections(d *Document) ([]byte, error) {
	v := reflect.ValueOf((*plain)(d)).Elem()
	t := v.Type()
	b := []byte{'{'}
	for i := 0; i < t.NumField(); i++ {
		name, opts, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		f := v.Field(i)
		if name == "-" || opts == "omitempty" && emptyValue(f) {
			continue
		}
		fb, err := json.Marshal(f.Interface())
		if err != nil {
			return nil, err
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, name)
		b = append(b, ':')
		b = append(b, fb...)
	}
	return append(b, '}'), nil
}

// emptyValue is encoding/json's omitempty test.
func emptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Pointer, reflect.Interface:
		return v.IsNil()
	}
	return v.IsZero()
}

// New returns an empty document of the current schema.
func New() *Document { return &Document{Schema: Schema} }

// ErrEmpty is returned when the input holds no document at all.
var ErrEmpty = errors.New("no document on stdin (expected the JSON output of a tsim command)")

// Read reads exactly one document.
func Read(r io.Reader) (*Document, error) {
	docs, err := ReadAll(r)
	if err != nil {
		return nil, err
	}
	if len(docs) != 1 {
		return nil, fmt.Errorf("expected one document on stdin, got %d", len(docs))
	}
	return docs[0], nil
}

// ReadAll reads one or more concatenated documents (JSON values separated
// by whitespace, as NDJSON or as pretty-printed documents back to back).
func ReadAll(r io.Reader) ([]*Document, error) {
	dec := json.NewDecoder(bufio.NewReader(r))
	var docs []*Document
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("document %d: truncated JSON input", len(docs)+1)
			}
			var se *json.SyntaxError
			if errors.As(err, &se) {
				return nil, fmt.Errorf("document %d: not JSON (offset %d: %v)", len(docs)+1, se.Offset, se)
			}
			return nil, fmt.Errorf("document %d: %w", len(docs)+1, err)
		}
		d, err := Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", len(docs)+1, err)
		}
		docs = append(docs, d)
	}
	if len(docs) == 0 {
		return nil, ErrEmpty
	}
	return docs, nil
}

// Parse decodes one document and checks its schema.
func Parse(b []byte) (*Document, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, errors.New("not a tsim document (expected a JSON object)")
	}
	var probe struct {
		Schema *string `json:"schema"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("not a tsim document: %v", err)
	}
	if probe.Schema == nil {
		return nil, errors.New(`not a tsim document (no "schema" field)`)
	}
	if *probe.Schema != Schema {
		return nil, fmt.Errorf("unsupported schema %q (this tsim reads %q)", *probe.Schema, Schema)
	}
	d := &Document{}
	if err := json.Unmarshal(b, d); err != nil {
		return nil, fmt.Errorf("malformed tsim document: %v", err)
	}
	return d, nil
}

// Write writes the document as indented JSON followed by a newline.
func Write(w io.Writer, d *Document) error {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// WriteCompact writes the document on one line (NDJSON).
func WriteCompact(w io.Writer, d *Document) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// Need returns an error naming the stage to run first when a section is missing.
func Need(section, stage string) error {
	return fmt.Errorf("the document has no %q section: run `%s` first", section, stage)
}
