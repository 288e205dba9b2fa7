package facts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/tsimerr"
)

// TestGoldenCorpus pins the model of every corpus router, in both formats.
// iptables tables are left out here: iptables_test.go has their goldens.
func TestGoldenCorpus(t *testing.T) {
	for _, c := range []struct{ dir, format, out string }{
		{"raw_facts", "raw", "raw"},
		{"tsim_facts", "json-legacy", "legacy"},
	} {
		f, err := Load(context.Background(), corpus(t, c.dir))
		if err != nil {
			t.Fatal(err)
		}
		if f.Format != c.format || len(f.Routers) != 10 || !strings.HasPrefix(f.Digest, "sha256:") || len(f.Findings) != 0 {
			t.Errorf("%s: format %q, %d routers, digest %q, findings %v", c.dir, f.Format, len(f.Routers), f.Digest, f.Findings)
		}
		for _, r := range f.Routers {
			cp := *r
			cp.Iptables = nil
			b, err := json.MarshalIndent(&cp, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join(c.out, r.Name+".json"), append(b, '\n'))
		}
	}
}

func TestLoadSortedAndParallelSafe(t *testing.T) {
	dir := corpus(t, "raw_facts")
	a, err := Load(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(a.Routers); i++ {
		if a.Routers[i-1].Name >= a.Routers[i].Name {
			t.Errorf("routers not sorted: %s before %s", a.Routers[i-1].Name, a.Routers[i].Name)
		}
	}
	// Loading again gives the same facts and digest (no dependence on
	// goroutine scheduling).
	b, err := Load(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Error("two loads of the same directory differ")
	}
}

func TestLoadBuiltin(t *testing.T) {
	f, err := Load(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if f.Source != "builtin:example" || f.Format != "builtin" || len(f.Routers) == 0 || !strings.HasPrefix(f.Digest, "sha256:") {
		t.Errorf("builtin: source %q format %q routers %d digest %q", f.Source, f.Format, len(f.Routers), f.Digest)
	}
	for _, r := range f.Routers {
		if !strings.HasPrefix(r.File, "builtin:example/") || len(r.Interfaces) == 0 || len(r.Tables) == 0 {
			t.Errorf("builtin router %s: file %q, %d interfaces, %d tables", r.Name, r.File, len(r.Interfaces), len(r.Tables))
		}
	}
}

func TestLoadErrors(t *testing.T) {
	tmp := t.TempDir()
	empty := filepath.Join(tmp, "empty")
	other := filepath.Join(tmp, "other")
	badRaw := filepath.Join(tmp, "badraw")
	badJSON := filepath.Join(tmp, "badjson")
	for _, d := range []string{empty, other, badRaw, badJSON} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, s string) {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(other, "notes.txt"), "hello")
	write(filepath.Join(badRaw, "a_facts.txt"), rawFile([3]string{"policy_rules", "r", "1:\tfrom all lookup ghost"}))
	write(filepath.Join(badRaw, "b_facts.txt"), "=== TSIM_SECTION_START:x ===\n---\n")
	write(filepath.Join(badJSON, "r.json"), "{\n\"routing\": [\n")
	notFacts := filepath.Join(tmp, "notes.txt")
	write(notFacts, "just some text\n")
	wrongFormat := filepath.Join(tmp, "wrong.json")
	write(wrongFormat, `{"format":"something/v9","facts":{}}`)

	tests := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(tmp, "nope"), "facts path " + filepath.Join(tmp, "nope") + " does not exist"},
		{"empty dir", empty, "facts directory " + empty + " is empty"},
		{"no facts files", other, "facts directory " + other + " has no facts files"},
		{"not facts", notFacts, notFacts + " is not a facts file"},
		{"bad raw", badRaw, filepath.Join(badRaw, "a_facts.txt") + `:9: policy rule "1:\tfrom all lookup ghost": unknown routing table "ghost"`},
		{"bad json", badJSON, filepath.Join(badJSON, "r.json") + ": not a predecessor JSON facts file: line 2"},
		{"wrong format", wrongFormat, wrongFormat + `: normalized facts: format "something/v9", want "tsim-facts/v1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(context.Background(), tt.path)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error = %q\nwant prefix %q", err, tt.want)
			}
			if tsimerr.ExitCode(err) != tsimerr.ExitInput {
				t.Errorf("exit code = %d, want %d", tsimerr.ExitCode(err), tsimerr.ExitInput)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
	// Problems of all files are kept for `facts check`.
	_, err := Load(context.Background(), badRaw)
	var pe *ParseError
	if !errors.As(err, &pe) || len(pe.Findings) != 2 || !strings.HasSuffix(pe.Findings[1].Pos.File, "b_facts.txt") {
		t.Errorf("merged errors = %v", err)
	}
}

func TestLoadCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Load(ctx, corpus(t, "raw_facts"))
	if !errors.Is(err, context.Canceled) || tsimerr.ExitCode(err) != tsimerr.ExitInterrupted {
		t.Errorf("error = %v, want context.Canceled", err)
	}
}

func TestNormalizedRoundTrip(t *testing.T) {
	for _, dir := range []string{"raw_facts", "tsim_facts"} {
		t.Run(dir, func(t *testing.T) {
			f, err := Load(context.Background(), corpus(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			f.Findings = append(f.Findings, warnf(Pos{File: "x", Line: 3}, "a finding survives"))
			var buf bytes.Buffer
			if err := WriteNormalized(&buf, f); err != nil {
				t.Fatal(err)
			}
			g, err := ReadNormalized(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(f, g) {
				a, _ := json.Marshal(f)
				b, _ := json.Marshal(g)
				t.Fatalf("round trip differs:\n%s", firstDiff(string(a), string(b)))
			}
			// Through a file and Load: the same routers; the file is the source.
			p := filepath.Join(t.TempDir(), "facts.json")
			if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			h, err := Load(context.Background(), p)
			if err != nil {
				t.Fatal(err)
			}
			if h.Format != "normalized" || h.Source != p || h.Digest == f.Digest || !reflect.DeepEqual(h.Routers, f.Routers) || !reflect.DeepEqual(h.Findings, f.Findings) {
				t.Errorf("Load(normalized): format %q source %q digest %q", h.Format, h.Source, h.Digest)
			}
		})
	}
}

func TestDigest(t *testing.T) {
	src := corpus(t, "raw_facts")
	dir := t.TempDir()
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a, err := Load(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest != b.Digest {
		t.Error("digest depends on the directory, not only on names and contents")
	}
	// One changed byte changes it.
	p := filepath.Join(dir, "hq-gw_facts.txt")
	data, _ := os.ReadFile(p)
	if err := os.WriteFile(p, bytes.Replace(data, []byte("metric 100"), []byte("metric 101"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Digest == a.Digest {
		t.Error("digest did not change with the content")
	}
}

func TestLoadSingleFiles(t *testing.T) {
	raw := filepath.Join(corpus(t, "raw_facts"), "hq-gw_facts.txt")
	f, err := Load(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Routers) != 1 || f.Routers[0].Name != "hq-gw" || f.Format != "raw" {
		t.Errorf("single raw: %d routers, format %q", len(f.Routers), f.Format)
	}
	js := filepath.Join(corpus(t, "tsim_facts"), "hq-gw.json")
	g, err := Load(context.Background(), js)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Routers) != 1 || g.Routers[0].Name != "hq-gw" || g.Format != "json-legacy" {
		t.Errorf("single json: %d routers, format %q", len(g.Routers), g.Format)
	}
}

func BenchmarkLoadCorpus(b *testing.B) {
	dir := corpus(b, "raw_facts")
	ctx := context.Background()
	for b.Loop() {
		if _, err := Load(ctx, dir); err != nil {
			b.Fatal(err)
		}
	}
}

func TestLoadMixedDirWarns(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(corpus(t, "raw_facts"), "hq-gw_facts.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hq-gw_facts.txt"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Load(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Routers) != 1 || len(f.Findings) != 1 || !strings.Contains(f.Findings[0].Message, "1 *.json files ignored") {
		t.Errorf("routers %d findings %v", len(f.Routers), f.Findings)
	}
}

func BenchmarkLoadBuiltin(b *testing.B) {
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(ctx, ""); err != nil {
			b.Fatal(err)
		}
	}
}
