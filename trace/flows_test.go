package trace

import (
	"testing"

	"github.com/tsim-dev/tsim/internal/tsimerr"
)

func itoaTest(i int) string {
	if i == 0 {
		return "0"
	}
	s := ""
	for ; i > 0; i /= 10 {
		s = string(rune('0'+i%10)) + s
	}
	return s
}

func TestFlowsFromSpec(t *testing.T) {
	fl, err := FlowsFromSpec("10.0.1.5", "10.0.2.5", "ssh,dns,8000-8001/udp", 40000)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"f1 tcp 22 40000 ssh", "f2 udp 53 40000 dns", "f3 udp 8000 40000 8000-8001/udp", "f4 udp 8001 40000 8000-8001/udp"}
	if len(fl) != len(want) {
		t.Fatalf("%d flows", len(fl))
	}
	for i, f := range fl {
		got := f.ID + " " + f.Proto + " " + itoaTest(f.DPort) + " " + itoaTest(f.SPort) + " " + f.Service
		if got != want[i] {
			t.Errorf("got %q want %q", got, want[i])
		}
	}
	fl, err = FlowsFromSpec("10.0.1.5", "10.0.2.5", "", 0)
	if err != nil || len(fl) != 1 || fl[0].Proto != "icmp" || fl[0].ID != "f1" {
		t.Fatalf("default flow: %+v %v", fl, err)
	}
	for _, bad := range [][3]string{{"x", "10.0.0.1", ""}, {"10.0.0.1", "", ""}, {"10.0.0.1", "10.0.0.2", "22/sctp"}} {
		if _, err := FlowsFromSpec(bad[0], bad[1], bad[2], 0); tsimerr.ExitCode(err) != tsimerr.ExitInput {
			t.Errorf("%v: err %v", bad, err)
		}
	}
}
