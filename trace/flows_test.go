package trace

import (
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/tsimerr"
)

func flowSummary(t *testing.T, in string) string {
	t.Helper()
	fl, err := ReadFlowsFile(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var s []string
	for _, f := range fl {
		x := f.ID + ":" + f.Src + ">" + f.Dst + ":" + f.Proto
		if f.DPort != 0 {
			x += "/" + itoaTest(f.DPort)
		}
		if f.SPort != 0 {
			x += ",s" + itoaTest(f.SPort)
		}
		if f.Expect != "" {
			x += "=" + f.Expect
		}
		if f.Ingress != "" {
			x += "@" + f.Ingress
		}
		s = append(s, x)
	}
	return strings.Join(s, " ")
}

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

func TestReadFlowsFile(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"csv with header and comments", "# flows\nsrc,dst,spec,expect\n10.0.1.5,10.0.2.5,ssh,allow\n\n10.0.1.5, 10.0.3.9 ,icmp\n",
			"f1:10.0.1.5>10.0.2.5:tcp/22=allow f2:10.0.1.5>10.0.3.9:icmp"},
		{"csv quoted spec", `10.0.1.5,10.0.2.5,"22,443/tcp",deny`, "f1:10.0.1.5>10.0.2.5:tcp/22=deny f2:10.0.1.5>10.0.2.5:tcp/443=deny"},
		{"csv unquoted spec with expect", "10.0.1.5,10.0.2.5,22,443,blocked", "f1:10.0.1.5>10.0.2.5:tcp/22=deny f2:10.0.1.5>10.0.2.5:tcp/443=deny"},
		{"csv unquoted spec without expect", "10.0.1.5,10.0.2.5,22,53/udp", "f1:10.0.1.5>10.0.2.5:tcp/22 f2:10.0.1.5>10.0.2.5:udp/53"},
		{"csv no spec", "10.0.1.5,10.0.2.5", "f1:10.0.1.5>10.0.2.5:icmp"},
		{"ndjson spec", `{"src":"10.0.1.5","dst":"10.0.2.5","spec":"https","expect":"allow","sport":5000}`, "f1:10.0.1.5>10.0.2.5:tcp/443,s5000=allow"},
		{"ndjson flow", `{"src":"1.2.3.4","dst":"10.0.2.5","proto":"udp","dport":53,"ingress":"r2:eth9"}`, "f1:1.2.3.4>10.0.2.5:udp/53@r2:eth9"},
		{"mixed", "{\"src\":\"10.0.1.5\",\"dst\":\"10.0.2.5\"}\n10.0.1.5,10.0.2.5,80", "f1:10.0.1.5>10.0.2.5:icmp f2:10.0.1.5>10.0.2.5:tcp/80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := flowSummary(t, tt.in); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestReadFlowsFileErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "# nothing\n", "no flows"},
		{"bad address", "src,dst,spec\n10.0.1.5,10.0.2.5,ssh\n10.0.1.x,10.0.2.5,ssh\n", "line 3"},
		{"bad spec", "10.0.1.5,10.0.2.5,ssh\n\n10.0.1.5,10.0.2.5,bogus\n", "line 3"},
		{"bad expect", "10.0.1.5,10.0.2.5,ssh,maybe", "line 1"},
		{"one field", "10.0.1.5", "line 1"},
		{"bad json", `{"src":"10.0.1.5",`, "line 1"},
		{"unknown json field", `{"src":"10.0.1.5","dst":"10.0.2.5","port":22}`, "line 1"},
		{"json spec and proto", `{"src":"10.0.1.5","dst":"10.0.2.5","spec":"22","proto":"tcp","dport":22}`, "line 1"},
		{"json bad dport", `{"src":"10.0.1.5","dst":"10.0.2.5","proto":"tcp"}`, "line 1"},
		{"csv bad quote", `10.0.1.5,10.0.2.5,"22`, "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadFlowsFile(strings.NewReader(tt.in))
			if err == nil {
				t.Fatal("no error")
			}
			if tsimerr.ExitCode(err) != tsimerr.ExitInput || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line naming %q, exit 2", err, tt.want)
			}
		})
	}
}

func FuzzReadFlowsFile(f *testing.F) {
	for _, s := range []string{"src,dst,spec\n10.0.1.5,10.0.2.5,ssh,allow\n", `{"src":"10.0.1.5","dst":"10.0.2.5","spec":"https"}`,
		"10.0.1.5,10.0.2.5,\"22,443\"\n# x\n", "10.0.1.5,10.0.2.5,1-1024"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		fl, err := ReadFlowsFile(strings.NewReader(in))
		if err != nil {
			if tsimerr.ExitCode(err) != tsimerr.ExitInput {
				t.Fatalf("error %v is not an input error", err)
			}
			return
		}
		for i, x := range fl {
			if x.ID != "f"+itoaTest(i+1) || x.Src == "" || x.Dst == "" {
				t.Fatalf("flow %d: %+v", i, x)
			}
		}
	})
}
