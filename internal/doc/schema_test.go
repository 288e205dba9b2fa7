package doc_test

// Real documents are checked against the JSON Schema published in
// docs/document.schema.json, and the schema and docs/document.md against the
// Go types, so none of the three can drift from the others.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tsim-dev/tsim/internal/cli"
	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/pdfcheck"
	"github.com/tsim-dev/tsim/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite testdata/*.json from the current tsim")

const (
	schemaFile = "../../docs/document.schema.json"
	docsFile   = "../../docs/document.md"
)

func compileSchema(t *testing.T) (*jsonschema.Schema, map[string]any) {
	t.Helper()
	f, err := os.Open(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	raw, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatalf("%s: %v", schemaFile, err)
	}
	obj := raw.(map[string]any)
	id := obj["$id"].(string)
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(id, raw); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(id)
	if err != nil {
		t.Fatalf("compile %s: %v", schemaFile, err)
	}
	return sch, obj
}

func validate(sch *jsonschema.Schema, b []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return sch.Validate(v)
}

// tsim runs the CLI in-process.
func tsim(t *testing.T, stdin []byte, args ...string) ([]byte, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(context.Background(), append([]string{"tsim"}, args...), cli.Stdio{In: bytes.NewReader(stdin), Out: &out, Err: &errb})
	return out.Bytes(), errb.String(), code
}

// goldenCases are trace documents on the built-in example network, one per
// kind of answer; docs/document.md quotes them.
var goldenCases = []struct {
	name string
	args []string
	code int
}{
	// DELIVERED (https) and DENIED at hq-gw (3306/tcp).
	{"trace-delivered-denied", []string{"-s", "10.1.10.5", "-d", "10.1.50.10", "-p", "https,3306/tcp"}, 1},
	// DNAT at inet-gw for a source on the Internet.
	{"trace-dnat-ingress", []string{"-s", "192.0.2.50", "-d", "203.0.113.5", "-p", "https", "--ingress", "inet-gw:eth0"}, 0},
	// EXITS_NETWORK with MASQUERADE, tcp and udp.
	{"trace-exits-network", []string{"-s", "10.1.10.5", "-d", "192.0.2.80", "-p", "http,53/udp"}, 0},
	// A mangle MARK selects policy table mpls.
	{"trace-mangle-mark", []string{"-s", "10.1.10.5", "-d", "10.3.10.5", "-p", "8443/tcp"}, 0},
	// ECMP: two branches; the reply of one dies INVALID at dc-core.
	{"trace-ecmp", []string{"-s", "10.1.10.5", "-d", "10.3.100.10"}, 1},
	// NULL_ROUTED by an unreachable rule, NO_ROUTE, LOOP, UNKNOWN (a match
	// tsim does not simulate) and UNKNOWN_SOURCE.
	{"trace-null-routed", []string{"-s", "10.1.30.10", "-d", "192.0.2.80", "-p", "https"}, 1},
	{"trace-no-route", []string{"-s", "10.3.20.10", "-d", "192.0.2.80", "-p", "https"}, 1},
	{"trace-loop", []string{"-s", "10.1.10.5", "-d", "10.99.0.5"}, 1},
	{"trace-unknown", []string{"-s", "10.3.100.10", "-d", "10.3.10.5", "-p", "9090/tcp"}, 1},
	{"trace-unknown-source", []string{"-s", "192.0.2.50", "-d", "10.1.50.10", "-p", "ssh"}, 1},
}

func TestGoldenDocumentsValidate(t *testing.T) {
	sch, _ := compileSchema(t)
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			out, errs, code := tsim(t, nil, append([]string{"trace", "--json"}, c.args...)...)
			if code != c.code {
				t.Fatalf("tsim %v: exit %d (want %d): %s", c.args, code, c.code, errs)
			}
			if err := validate(sch, out); err != nil {
				t.Fatalf("fresh document does not validate: %v\n%s", err, out)
			}
			golden := filepath.Join("testdata", c.name+".json")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			b, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/doc -update)", err)
			}
			if err := validate(sch, b); err != nil {
				t.Errorf("%s does not validate: %v", golden, err)
			}
			// The golden file is a document tsim reads back unchanged.
			d, err := doc.Read(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("%s: %v", golden, err)
			}
			var back bytes.Buffer
			if err := doc.Write(&back, d); err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, b, back.Bytes()) {
				t.Errorf("%s changes when read and written:\n%s", golden, back.Bytes())
			}
		})
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

// TestSchemaRejects makes sure the schema is not a rubber stamp: each
// mutation of a valid document breaks one rule the reference states.
func TestSchemaRejects(t *testing.T) {
	sch, _ := compileSchema(t)
	base, err := os.ReadFile(filepath.Join("testdata", "trace-delivered-denied.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(sch, base); err != nil {
		t.Fatalf("base document invalid: %v", err)
	}
	cases := []struct {
		name   string
		mutate func(m map[string]any)
	}{
		{"wrong schema version", func(m map[string]any) { m["schema"] = "tsim/v2" }},
		{"no schema", func(m map[string]any) { delete(m, "schema") }},
		{"bad digest", func(m map[string]any) { m["facts"].(map[string]any)["digest"] = "md5:abc" }},
		{"flow without id", func(m map[string]any) { delete(flow(m, 0), "id") }},
		{"unknown proto", func(m map[string]any) { flow(m, 0)["proto"] = "sctp" }},
		{"port out of range", func(m map[string]any) { flow(m, 0)["dport"] = 70000 }},
		{"src not IPv4", func(m map[string]any) { flow(m, 0)["src"] = "10.1.10" }},
		{"unknown disposition", func(m map[string]any) { trace(m, 0)["disposition"] = "MAYBE" }},
		{"DENIED without denied_by", func(m map[string]any) { delete(trace(m, 1), "denied_by") }},
		{"denied_by on a delivered flow", func(m map[string]any) { trace(m, 0)["denied_by"] = trace(m, 1)["denied_by"] }},
		{"hop kind", func(m map[string]any) { hop(m, 0, 1)["kind"] = "switch" }},
		{"hop without in", func(m map[string]any) { delete(hop(m, 0, 1), "in") }},
		{"undocumented hop field", func(m map[string]any) { hop(m, 0, 1)["ttl"] = 64 }},
		{"step kind", func(m map[string]any) {
			hop(m, 0, 1)["steps"].([]any)[0].(map[string]any)["kind"] = "magic"
		}},
		{"negative rule index", func(m map[string]any) { trace(m, 1)["denied_by"].(map[string]any)["index"] = -1 }},
		{"reach verdict", func(m map[string]any) {
			m["reach"] = []any{map[string]any{"flow": "f1", "e2e": map[string]any{"verdict": "MAYBE"}, "routers": []any{}}}
		}},
		{"lab without id", func(m map[string]any) { m["lab"] = map[string]any{"routers": []any{}, "hosts": []any{}} }},
		{"report without pages", func(m map[string]any) { m["report"] = map[string]any{"pdf": "r.pdf"} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(base, &m); err != nil {
				t.Fatal(err)
			}
			c.mutate(m)
			b, _ := json.Marshal(m)
			if err := validate(sch, b); err == nil {
				t.Errorf("schema accepts a document with %s", c.name)
			}
		})
	}
	// Unknown top-level sections are passed through by every stage, so
	// the schema allows them.
	var m map[string]any
	json.Unmarshal(base, &m)
	m["x-annotations"] = map[string]any{"ticket": "CHG-1"}
	b, _ := json.Marshal(m)
	if err := validate(sch, b); err != nil {
		t.Errorf("extra top-level section rejected: %v", err)
	}
}

func flow(m map[string]any, i int) map[string]any {
	return m["flows"].([]any)[i].(map[string]any)
}

func trace(m map[string]any, i int) map[string]any {
	return m["trace"].([]any)[i].(map[string]any)
}

func hop(m map[string]any, i, h int) map[string]any {
	return trace(m, i)["hops"].([]any)[h].(map[string]any)
}

// defOf names the schema definition of each document type.
var defOf = map[reflect.Type]string{
	reflect.TypeOf(doc.FactsRef{}):     "facts",
	reflect.TypeOf(doc.Flow{}):         "flow",
	reflect.TypeOf(doc.Trace{}):        "trace",
	reflect.TypeOf(doc.Hop{}):          "hop",
	reflect.TypeOf(doc.Branch{}):       "branch",
	reflect.TypeOf(doc.RefusedRoute{}): "refusedRoute",
	reflect.TypeOf(doc.Step{}):         "step",
	reflect.TypeOf(doc.RuleRef{}):      "ruleRef",
	reflect.TypeOf(doc.Lab{}):          "lab",
	reflect.TypeOf(doc.LabRouter{}):    "labRouter",
	reflect.TypeOf(doc.Refusal{}):      "refusal",
	reflect.TypeOf(doc.LabHost{}):      "labHost",
	reflect.TypeOf(doc.Reach{}):        "reach",
	reflect.TypeOf(doc.E2E{}):          "e2e",
	reflect.TypeOf(doc.RouterReach{}):  "routerReach",
	reflect.TypeOf(doc.LiveRule{}):     "liveRule",
	reflect.TypeOf(doc.CounterDelta{}): "counterDelta",
	reflect.TypeOf(doc.Report{}):       "report",
	reflect.TypeOf(doc.Section{}):      "section",
	reflect.TypeOf(doc.Merged{}):       "merged",
	reflect.TypeOf(doc.Error{}):        "error",
}

// TestSchemaCoversTypes walks the Go types of the document: every JSON
// field must be in the schema (and nothing else), and docs/document.md must
// name it, so a field added to internal/doc without documentation fails.
func TestSchemaCoversTypes(t *testing.T) {
	_, obj := compileSchema(t)
	defs := obj["$defs"].(map[string]any)
	md, err := os.ReadFile(docsFile)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[reflect.Type]bool{}
	var walk func(typ reflect.Type, props map[string]any, where string)
	walk = func(typ reflect.Type, props map[string]any, where string) {
		if seen[typ] {
			return
		}
		seen[typ] = true
		fields := map[string]bool{}
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || name == "" {
				continue
			}
			fields[name] = true
			if _, ok := props[name]; !ok {
				t.Errorf("%s field %q (%s.%s) is not in %s", where, name, typ.Name(), f.Name, schemaFile)
			}
			if !regexp.MustCompile("`(\\.?[a-z0-9_.\\[\\]]*\\.)?" + regexp.QuoteMeta(name) + "`").Match(md) {
				t.Errorf("%s field %q is not documented in %s", where, name, docsFile)
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				def, ok := defOf[ft]
				if !ok {
					t.Errorf("type %s has no schema definition (add it to defOf and the schema)", ft.Name())
					continue
				}
				d, ok := defs[def].(map[string]any)
				if !ok {
					t.Errorf("schema has no $defs/%s", def)
					continue
				}
				walk(ft, d["properties"].(map[string]any), def)
			}
		}
		for name := range props {
			if !fields[name] {
				t.Errorf("%s: schema property %q is not a field of %s", where, name, typ.Name())
			}
		}
	}
	walk(reflect.TypeOf(doc.Document{}), obj["properties"].(map[string]any), "document")
	for typ := range defOf {
		if !seen[typ] {
			t.Errorf("%s is in defOf but not reachable from Document", typ.Name())
		}
	}
}

// TestRunDocumentValidates checks the documents of the other stages: a
// whole run (lab, reach, report) and merge, which need root.
func TestRunDocumentValidates(t *testing.T) {
	testenv.NeedRoot(t, "sudo make test")
	sch, _ := compileSchema(t)
	dir := t.TempDir()
	pdf := filepath.Join(dir, "r.pdf")
	out, errs, code := tsim(t, nil, "-q", "run", "-s", "10.1.10.5", "-d", "10.1.50.10", "-p", "https,3306/tcp", "-o", pdf, "--json")
	if code != 0 && code != 1 {
		t.Fatalf("run: exit %d: %s", code, errs)
	}
	if err := validate(sch, out); err != nil {
		t.Fatalf("run document does not validate: %v\n%s", err, out)
	}
	var d doc.Document
	if err := json.Unmarshal(out, &d); err != nil {
		t.Fatal(err)
	}
	if d.Lab == nil || len(d.Reach) != 2 || d.Report == nil {
		t.Fatalf("run document lacks sections: lab %v, %d reach, report %v", d.Lab != nil, len(d.Reach), d.Report != nil)
	}
	merged, errs, code := tsim(t, append(append([]byte{}, out...), out...), "merge", "-o", filepath.Join(dir, "all.pdf"))
	if code != 0 {
		t.Fatalf("merge: exit %d: %s", code, errs)
	}
	if err := validate(sch, merged); err != nil {
		t.Fatalf("merge document does not validate: %v\n%s", err, merged)
	}
	if !strings.Contains(string(merged), `"documents": 2`) {
		t.Errorf("merge document: %s", merged)
	}
	pdfcheck.Validate(t, pdf)
	pdfcheck.Validate(t, filepath.Join(dir, "all.pdf"))
}
