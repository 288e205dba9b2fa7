package trace

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/tsim-dev/tsim/internal/doc"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// golden compares got with testdata/golden/name, rewriting it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := bytes.Split(got, []byte("\n")), bytes.Split(want, []byte("\n"))
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w []byte
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if !bytes.Equal(g, w) {
				t.Errorf("%s differs from the golden file at line %d (go test -update rewrites it):\n got: %s\nwant: %s", p, i+1, g, w)
				return
			}
		}
	}
}

// goldenSet traces flows on e and checks the JSON document and the text
// rendering (plain and coloured) against golden files.
func goldenSet(t *testing.T, e *Engine, name string, specs [][4]string) {
	t.Helper()
	d := doc.New()
	for _, s := range specs {
		fl, err := FlowsFromSpec(s[0], s[1], s[2], 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fl {
			f.ID = "f" + strconv.Itoa(len(d.Flows)+1)
			f.Ingress = s[3]
			d.Flows = append(d.Flows, f)
		}
	}
	tr, err := e.TraceAll(context.Background(), d.Flows)
	if err != nil {
		t.Fatal(err)
	}
	d.Trace = tr
	var js, txt, col bytes.Buffer
	if err := doc.Write(&js, d); err != nil {
		t.Fatal(err)
	}
	if err := RenderText(&txt, d, false); err != nil {
		t.Fatal(err)
	}
	if err := RenderText(&col, d, true); err != nil {
		t.Fatal(err)
	}
	golden(t, name+".json", js.Bytes())
	golden(t, name+".txt", txt.Bytes())
	golden(t, name+".color.txt", col.Bytes())
}

func TestGoldenLab(t *testing.T) {
	goldenSet(t, loadLab(t), "lab", [][4]string{
		{"10.0.1.5", "10.0.3.9", "", ""},
		{"10.0.1.5", "10.0.2.5", "1003,2001,2002,2005,2008,2009", ""},
		{"10.0.1.5", "10.0.2.200", "2010", ""},
		{"10.0.1.5", "8.8.8.8", "https", ""},
		{"198.51.100.7", "203.0.113.2", "8080", "r2:eth9"},
		{"10.0.1.5", "10.0.3.9", "23,24", ""},
		{"10.0.1.66", "10.0.3.9", "icmp", ""},
		{"10.0.1.77", "10.0.3.9", "25,26", ""},
		{"10.0.3.9", "172.16.0.1", "", ""},
		{"10.0.1.5", "10.9.1.1", "", ""},
		{"192.0.2.9", "10.0.1.5", "", ""},
		{"10.0.12.1", "10.0.3.9", "ssh", ""},
		{"10.0.1.5", "10.0.12.2", "22,80", ""},
	})
}

func TestGoldenCorpus(t *testing.T) {
	goldenSet(t, New(loadCorpus(t, "raw_facts")), "corpus-raw", [][4]string{
		{"10.1.10.25", "10.3.20.100", "", ""},
		{"10.1.10.25", "10.3.20.100", "ssh,10000/udp", ""},
		{"10.1.3.50", "10.2.5.20", "10000", ""},
		{"10.2.5.1", "10.99.99.99", "", ""},
		{"10.1.1.1", "10.2.1.1", "", ""},
		{"10.3.20.5", "8.8.8.8", "", ""},
		{"198.51.100.99", "203.0.113.10", "80", ""},
	})
}
