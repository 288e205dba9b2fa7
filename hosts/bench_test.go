package hosts

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/facts"
)

// BenchmarkUpDown builds and removes the full built-in example lab and
// reports the median Up and Down times against DESIGN §11's targets
// (up < 300 ms, down < 100 ms; the predecessor needed 1.5 s to set up).
//
//	sudo go test ./hosts -run '^$' -bench UpDown -benchtime 10x
func BenchmarkUpDown(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	f, err := facts.Load(context.Background(), "")
	if err != nil {
		b.Fatal(err)
	}
	opts := Options{RegistryDir: filepath.Join(b.TempDir(), "labs")}
	var ups, downs []time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		lab, err := Up(context.Background(), f, doc.New(), opts)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := Down(context.Background(), lab.ID, opts); err != nil {
			b.Fatal(err)
		}
		ups, downs = append(ups, t1.Sub(t0)), append(downs, time.Since(t1))
	}
	up, down := median(ups), median(downs)
	b.ReportMetric(float64(up.Microseconds())/1000, "up-ms")
	b.ReportMetric(float64(down.Microseconds())/1000, "down-ms")
	b.ReportMetric(up.Seconds()/0.300, "up/target")
	b.ReportMetric(down.Seconds()/0.100, "down/target")
	b.ReportMetric(1.5/up.Seconds(), "x-predecessor")
	b.ReportMetric(float64(len(f.Routers)), "routers")
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
