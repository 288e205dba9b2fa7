package sweep

import (
	"reflect"

	"github.com/tsim-dev/tsim/internal/doc"
)

var hopsType = reflect.TypeFor[[]*doc.Hop]()

// extraHops returns every hop list of a trace besides Hops: the reply's
// path and every ECMP branch's paths, when the trace has them (fields of
// type []*doc.Hop, directly or in the elements of a slice of structs, such
// as ReplyHops and Branches[].Hops/ReplyHops). A class is uniform only if
// every router any of them crosses treats its members alike, so refine
// takes the cuts of all of them; found by type, so sweep needs no change
// when trace reports more paths.
func extraHops(v any) [][]*doc.Hop {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return nil
	}
	var out [][]*doc.Hop
	t := rv.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		fv := rv.Field(i)
		switch {
		case f.Type == hopsType:
			if f.Name != "Hops" && fv.Len() > 0 {
				out = append(out, fv.Interface().([]*doc.Hop))
			}
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Pointer && f.Type.Elem().Elem().Kind() == reflect.Struct:
			for k := range fv.Len() {
				e := fv.Index(k).Elem()
				if !e.IsValid() {
					continue
				}
				for j := range e.NumField() {
					if e.Type().Field(j).IsExported() && e.Field(j).Type() == hopsType && e.Field(j).Len() > 0 {
						out = append(out, e.Field(j).Interface().([]*doc.Hop))
					}
				}
			}
		}
	}
	return out
}

// replyHops returns the trace's reply path (a field ReplyHops), if any.
func replyHops(v any) []*doc.Hop {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return nil
	}
	if f := rv.FieldByName("ReplyHops"); f.IsValid() && f.Type() == hopsType {
		return f.Interface().([]*doc.Hop)
	}
	return nil
}
