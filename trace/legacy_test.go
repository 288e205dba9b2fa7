package trace

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/tsim-dev/tsim/internal/facts"
	"github.com/tsim-dev/tsim/internal/testenv"
)

// loadCorpus loads one facts set of the predecessor's corpus (testdata/).
func loadCorpus(t testing.TB, sub string) *facts.Facts {
	t.Helper()
	p := testenv.Corpus(t, sub)
	f, err := facts.Load(context.Background(), p)
	if err != nil {
		t.Fatalf("load %s: %v", p, err)
	}
	return f
}

type vectorFile struct {
	Facts   string `json:"facts"`
	Vectors []struct {
		ID          int             `json:"id"`
		Description string          `json:"description"`
		Src         string          `json:"src"`
		Dst         string          `json:"dst"`
		ExitCode    int             `json:"exit_code"`
		LegacyJSON  json.RawMessage `json:"legacy_json"`
		Stderr      string          `json:"stderr"`
	} `json:"vectors"`
}

func TestVectors(t *testing.T) {
	data, err := os.ReadFile(testenv.Corpus(t, "trace-vectors.json"))
	if err != nil {
		t.Fatalf("trace vectors missing: %v", err)
	}
	var vf vectorFile
	if err := json.Unmarshal(data, &vf); err != nil {
		t.Fatal(err)
	}
	if len(vf.Vectors) != 30 {
		t.Fatalf("want 30 vectors, file has %d", len(vf.Vectors))
	}
	e := New(loadCorpus(t, vf.Facts))
	for _, v := range vf.Vectors {
		t.Run(v.Description, func(t *testing.T) {
			res := LegacyRun(e, v.Src, v.Dst)
			if res.Exit != v.ExitCode {
				t.Errorf("exit %d, want %d", res.Exit, v.ExitCode)
			}
			if res.Stderr != v.Stderr {
				t.Errorf("stderr %q, want %q", res.Stderr, v.Stderr)
			}
			var want, got any
			if err := json.Unmarshal(v.LegacyJSON, &want); err != nil {
				t.Fatal(err)
			}
			if len(res.Stdout) > 0 {
				if err := json.Unmarshal(res.Stdout, &got); err != nil {
					t.Fatalf("output is not JSON: %v", err)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%d %s -> %s\n got: %s\nwant: %s", v.ID, v.Src, v.Dst, res.Stdout, v.LegacyJSON)
			}
			out, exit := LegacyJSON(e, v.Src, v.Dst)
			if exit != res.Exit || string(out) != string(res.Stdout) {
				t.Error("LegacyJSON and LegacyRun disagree")
			}
		})
	}
}
