package flowtest

import (
	"fmt"
	"strings"
	"testing"
)

// TestShardPartition: for every shard count N, the shards 1..N of a file
// (with a header, comments and blank lines between the flows) hold every
// flow line exactly once, in file order, and the same line always lands in
// the same shard (the assignment depends on the file alone, not on the run).
func TestShardPartition(t *testing.T) {
	var b strings.Builder
	b.WriteString("src,dst,spec,expect\n")
	for i := range 97 {
		if i%10 == 3 {
			b.WriteString("# a comment\n\n")
		}
		fmt.Fprintf(&b, "10.0.%d.%d,10.9.0.1,%d/tcp,allow\n", i/200, i%200+1, 1000+i)
	}
	f, err := Read(strings.NewReader(b.String()), "suite.csv")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Lines) != 97 {
		t.Fatalf("%d flow lines read, want 97", len(f.Lines))
	}
	for _, n := range []int{1, 2, 3, 7, 10, 96, 97, 200} {
		count := map[int]int{}
		for i := 1; i <= n; i++ {
			prev := 0
			sh := f.Shard(i, n)
			again := f.Shard(i, n)
			if len(sh.Lines) != len(again.Lines) {
				t.Fatalf("shard %d/%d: %d then %d lines", i, n, len(sh.Lines), len(again.Lines))
			}
			for k, l := range sh.Lines {
				if l.N <= prev {
					t.Errorf("shard %d/%d: line %d after line %d", i, n, l.N, prev)
				}
				if again.Lines[k].N != l.N {
					t.Errorf("shard %d/%d: not stable (line %d, then %d)", i, n, l.N, again.Lines[k].N)
				}
				prev = l.N
				count[l.N]++
			}
		}
		for _, l := range f.Lines {
			if count[l.N] != 1 {
				t.Errorf("N=%d: line %d is in %d shards, want exactly 1", n, l.N, count[l.N])
			}
		}
		if len(count) != len(f.Lines) {
			t.Errorf("N=%d: shards hold %d distinct lines, the file %d", n, len(count), len(f.Lines))
		}
	}
}
