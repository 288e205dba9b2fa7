package sweep

import (
	"context"
	"strings"
	"testing"
)

// TestShadowed adds rules to the example's dc-srv FORWARD chain and wants
// exactly the unreachable ones reported, at their file:line.
func TestShadowed(t *testing.T) {
	if fs := Shadowed(loadExample(t)); len(fs) != 0 {
		t.Fatalf("the example has no shadowed rule, got %v", fs)
	}
	anchor := "[0:0] -A FORWARD -d 10.3.100.0/24 -i eth1 -j ACCEPT"
	added := []struct {
		rule     string
		shadowed bool
	}{
		// Covered by "-o eth1 -p tcp -m tcp --dport 5432 -j ACCEPT" (#5).
		{"-A FORWARD -s 10.1.0.0/16 -o eth1 -p tcp -m tcp --dport 5432 -j DROP", true},
		// Not covered: udp.
		{"-A FORWARD -o eth1 -p udp -m udp --dport 5432 -j DROP", false},
		// Two rules that together cover the next one.
		{"-A FORWARD -s 10.0.0.0/9 -i eth2 -j ACCEPT", false},
		{"-A FORWARD -s 10.128.0.0/9 -i eth2 -j DROP", false},
		{"-A FORWARD -s 10.1.2.0/24 -i eth2 -p tcp -m multiport --dports 22,443 -j ACCEPT", true},
		{"-A FORWARD -s 10.200.0.0/16 -i eth2 -m conntrack --ctstate NEW -j REJECT --reject-with icmp-port-unreachable", true},
		// Only the two /9 rules together cover this one.
		{"-A FORWARD -s 10.0.0.0/8 -i eth2 -p tcp -j ACCEPT", true},
		// A rate limit never covers: packets beyond it go on.
		{"-A FORWARD -d 10.9.0.0/16 -m limit --limit 5/sec -j ACCEPT", false},
		{"-A FORWARD -d 10.9.1.0/24 -j DROP", false},
		// Unknown matches in the rule under test only narrow it.
		{"-A FORWARD -s 10.0.0.1/32 -i eth2 -m mac --mac-source 00:11:22:33:44:55 -j DROP", true},
		// A negated address: everything but 10/8 from eth2 is covered? No: 11/8 is not.
		{"-A FORWARD ! -s 10.0.0.0/8 -i eth2 -j DROP", false},
		{"-A FORWARD -s 11.0.0.0/8 -i eth2 -j ACCEPT", true},
	}
	var lines []string
	for _, a := range added {
		lines = append(lines, "[0:0] "+a.rule)
	}
	f := editedExample(t, map[string][][2]string{"dc-srv": {{anchor, anchor + "\n" + strings.Join(lines, "\n")}}})
	got := map[string]bool{}
	for _, fd := range Shadowed(f) {
		if fd.Router != "dc-srv" || !strings.HasSuffix(fd.Pos.File, "dc-srv_facts.txt") || fd.Pos.Line == 0 {
			t.Errorf("finding without dc-srv FILE:LINE: %v", fd)
		}
		for _, a := range added {
			if strings.HasSuffix(fd.Message, ": "+a.rule) {
				got[a.rule] = true
			}
		}
		if strings.HasSuffix(fd.Message, "-s 10.0.0.0/8 -i eth2 -p tcp -j ACCEPT") && !strings.Contains(fd.Message, "matched first by rules #10, #11 (shadowed)") {
			t.Errorf("the union of #10 and #11 covers it: %s", fd.Message)
		}
		t.Log(fd.String())
	}
	for _, a := range added {
		if got[a.rule] != a.shadowed {
			t.Errorf("%s: shadowed = %v, want %v", a.rule, got[a.rule], a.shadowed)
		}
	}
}

// TestUndecided sweeps the whole example: dc-gw's drop of the branch's
// guest subnet decides nothing (br-gw null-routes those flows first); rules that
// decide known flows are not reported, anti-spoofing on the uplink
// included (the sweep from the uplinks reaches it).
func TestUndecided(t *testing.T) {
	if testing.Short() {
		t.Skip("sweeps every flow of the example (tens of seconds)")
	}
	fs, st, err := Undecided(context.Background(), loadExample(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d classes, %d traces, %d rules decide nothing", st.Classes, st.Traces, len(fs))
	msgs := ""
	for _, f := range fs {
		msgs += f.String() + "\n"
	}
	for _, want := range []string{"dc-gw_facts.txt:143: warning: filter/SITES_TO_DC rule 1 decides no traced flow"} {
		if !strings.Contains(msgs, want) {
			t.Errorf("missing %q in\n%s", want, msgs)
		}
	}
	// The README's demo: 3306/tcp from HQ users is dropped by hq-gw HQ_EGRESS #2.
	for _, not := range []string{"filter/HQ_EGRESS rule 2 ", "filter/DB_GUARD rule 3 ", "filter/ANTI_SPOOF rule 1 "} {
		if strings.Contains(msgs, not) {
			t.Errorf("%q decides flows but is reported:\n%s", not, msgs)
		}
	}
}
