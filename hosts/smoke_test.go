package hosts

import (
	"context"
	"testing"
	"time"

	"github.com/tsim-dev/tsim/internal/doc"
)

func TestSmokeCorpus(t *testing.T) {
	needRoot(t)
	noLeak(t)
	f := loadCorpus(t)
	opts := testOpts(t)
	t0 := time.Now()
	lab, err := Up(context.Background(), f, doc.New(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("up %v", time.Since(t0))
	for _, r := range lab.Routers {
		for _, x := range r.Refused {
			t.Logf("%s: %s %s: %s", r.Name, x.What, x.Line, x.Error)
		}
	}
	t0 = time.Now()
	if err := Down(context.Background(), lab.ID, opts); err != nil {
		t.Fatal(err)
	}
	t.Logf("down %v", time.Since(t0))
}
