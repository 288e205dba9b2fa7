package sweep

import (
	"context"
	"testing"
)

func TestParseRange(t *testing.T) {
	cases := []struct {
		in     string
		lo, hi string
		bad    bool
	}{
		{"10.1.2.3", "10.1.2.3", "10.1.2.3", false},
		{"10.1.0.0/16", "10.1.0.0", "10.1.255.255", false},
		{"10.1.2.3/24", "10.1.2.0", "10.1.2.255", false},
		{"0.0.0.0/0", "0.0.0.0", "255.255.255.255", false},
		{"10.0.0.5-10.0.0.9", "10.0.0.5", "10.0.0.9", false},
		{"10.0.0.9-10.0.0.5", "", "", true},
		{"10.0.0.0/33", "", "", true},
		{"::1", "", "", true},
		{"host", "", "", true},
	}
	for _, c := range cases {
		r, err := ParseRange(c.in)
		if (err != nil) != c.bad {
			t.Errorf("%q: err %v, want bad=%v", c.in, err, c.bad)
			continue
		}
		if !c.bad && (addrOf(r.Lo).String() != c.lo || addrOf(r.Hi).String() != c.hi) {
			t.Errorf("%q = %s-%s, want %s-%s", c.in, addrOf(r.Lo), addrOf(r.Hi), c.lo, c.hi)
		}
	}
}

func TestAddrString(t *testing.T) {
	for in, want := range map[string]string{"10.1.0.0/16": "10.1.0.0/16", "10.0.0.5-10.0.0.9": "10.0.0.5-10.0.0.9",
		"10.0.0.4-10.0.0.7": "10.0.0.4/30", "10.0.0.7": "10.0.0.7", "0.0.0.0/0": "0.0.0.0/0", "10.0.0.2-10.0.0.5": "10.0.0.2-10.0.0.5"} {
		r, err := ParseRange(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := AddrString(r); got != want {
			t.Errorf("AddrString(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestParseSpec(t *testing.T) {
	cases := []struct {
		in   string
		want string
		bad  bool
	}{
		{"", "icmp", false},
		{"1-65535/tcp", "tcp:1-65535", false},
		{"tcp,udp", "tcp:1-65535 udp:1-65535", false},
		{"22,https,20-30/tcp,53/udp,ping", "tcp:20-30,443 udp:53 icmp", false},
		{"8000-8002,8003", "tcp:8000-8003", false},
		{"dns", "udp:53", false},
		{"9-1/tcp", "", true},
		{"0-5/tcp", "", true},
		{"1-70000", "", true},
		{"5/sctp", "", true},
		{"nosuchservice", "", true},
	}
	for _, c := range cases {
		ps, err := ParseSpec(c.in)
		if (err != nil) != c.bad {
			t.Errorf("%q: err %v, want bad=%v", c.in, err, c.bad)
			continue
		}
		if c.bad {
			continue
		}
		got := ""
		for i, p := range ps {
			if i > 0 {
				got += " "
			}
			got += p.Name
			for k, r := range p.Ports {
				sep := ","
				if k == 0 {
					sep = ":"
				}
				got += sep + PortString(r)
			}
		}
		if got != c.want {
			t.Errorf("%q = %q, want %q", c.in, got, c.want)
		}
	}
}

func FuzzParseSpec(f *testing.F) {
	for _, s := range []string{"1-65535/tcp", "tcp,udp,icmp", "22,https", "9-1/tcp", "", ",", "-/", "1-/udp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ps, err := ParseSpec(s)
		if err != nil {
			return
		}
		for _, p := range ps {
			for i, r := range p.Ports {
				if r.Lo < 1 || r.Hi > 65535 || r.Lo > r.Hi || i > 0 && p.Ports[i-1].Hi+1 >= r.Lo {
					t.Fatalf("%q: bad ports %v", s, p.Ports)
				}
			}
		}
	})
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "1.2.3.4-1.2.3.5", "1.2.3.4", "::/0", "1.2.3.4/", "-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			return
		}
		if r.Lo > r.Hi {
			t.Fatalf("%q: %v", s, r)
		}
		if back, err := ParseRange(AddrString(r)); err != nil || back != r {
			t.Fatalf("%q: %v renders as %q which parses as %v, %v", s, r, AddrString(r), back, err)
		}
	})
}

// BenchmarkSweep10x10AllTCP is the DESIGN §11 figure: the example's
// 10.0.0.0/8 → 10.0.0.0/8 on every TCP port.
func BenchmarkSweep10x10AllTCP(b *testing.B) {
	f := loadExample(b)
	r, _ := ParseRange("10.0.0.0/8")
	ps, _ := ParseSpec("tcp")
	sp := Space{Src: r, Dst: r, Protos: ps}
	for b.Loop() {
		_, st, err := Run(context.Background(), sp, NewModel(f))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(st.Classes), "classes")
		b.ReportMetric(float64(st.Traces), "traces")
	}
}
