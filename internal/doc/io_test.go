package doc

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestMarshalSectionsIsEncodingJSON: writing the sections one by one gives
// the bytes encoding/json gives for the whole document, whichever sections
// are present (each field of Document filled, then each left out), so a
// section added to Document later cannot be dropped or reordered.
func TestMarshalSectionsIsEncodingJSON(t *testing.T) {
	paths, _ := filepath.Glob("testdata/trace-*.json")
	if len(paths) == 0 {
		t.Fatal("no testdata/trace-*.json")
	}
	var docs []*Document
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var d Document
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		docs = append(docs, &d)
	}
	// Every section present (a zero element where the fixture has none),
	// then each one missing in turn.
	full := *docs[0]
	v := reflect.ValueOf(&full).Elem()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		switch {
		case v.Type().Field(i).Name == "Extra":
		case f.Kind() == reflect.Pointer && f.IsNil():
			f.Set(reflect.New(f.Type().Elem()))
		case f.Kind() == reflect.Slice && f.Len() == 0:
			f.Set(reflect.Append(f, reflect.New(f.Type().Elem().Elem())))
		}
	}
	docs = append(docs, &full, &Document{}, New(), &Document{Flows: []*Flow{}, Errors: []*Error{}})
	for i := 0; i < v.NumField(); i++ {
		d := full
		f := reflect.ValueOf(&d).Elem().Field(i)
		f.Set(reflect.Zero(f.Type()))
		docs = append(docs, &d)
	}
	for i, d := range docs {
		want, err := json.Marshal((*plain)(d))
		if err != nil {
			t.Fatal(err)
		}
		got, err := d.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("document %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// TestUnknownSectionsPassThrough: a top-level section tsim does not know
// is kept on reading and written back, with the known ones unchanged.
func TestUnknownSectionsPassThrough(t *testing.T) {
	in := []byte(`{"schema":"tsim/v1","flows":[{"id":"f1","src":"10.0.0.1","dst":"10.0.0.2","proto":"icmp"}],"x-annotations":{"ticket":"CHG-1"}}`)
	var d Document
	if err := json.Unmarshal(in, &d); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(&d)
	if err != nil {
		t.Fatal(err)
	}
	var got, want map[string]any
	json.Unmarshal(out, &got)
	json.Unmarshal(in, &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %s\nwant %s", out, in)
	}
}
