package facts

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var updateIpt = flag.Bool("update-iptables", false, "rewrite testdata/iptables golden files")

func TestTokenizeIptables(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{`-A INPUT -j ACCEPT`, []string{"-A", "INPUT", "-j", "ACCEPT"}, false},
		{"  -A\tX   -j  LOG  ", []string{"-A", "X", "-j", "LOG"}, false},
		{`--log-prefix "X: "`, []string{"--log-prefix", "X: "}, false},
		{`--comment "a b" -j DROP`, []string{"--comment", "a b", "-j", "DROP"}, false},
		{`--comment "say \"hi\" \\ ok"`, []string{"--comment", `say "hi" \ ok`}, false},
		{`--comment ""`, []string{"--comment", ""}, false},
		{`a"b c"d`, []string{"ab c", "d"}, false}, // a closing quote ends the word
		{`a\b`, []string{`a\b`}, false},           // backslash outside quotes is literal
		{`--comment "open`, nil, true},
		{`--comment "x\"`, nil, true},
	}
	for _, tt := range tests {
		got, err := TokenizeIptables(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("TokenizeIptables(%q) error = %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if !tt.err && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("TokenizeIptables(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// ruleString renders a parsed rule compactly for comparisons.
func ruleString(r *IptRule) string {
	var b strings.Builder
	for _, m := range r.Matches {
		b.WriteString("[" + m.Module)
		for _, o := range m.Options {
			b.WriteString(" ")
			if o.Neg {
				b.WriteString("!")
			}
			b.WriteString(o.Name)
			for _, a := range o.Args {
				b.WriteString("=" + a)
			}
		}
		b.WriteString("]")
	}
	if r.Target != nil {
		if r.Target.Goto {
			b.WriteString(" goto ")
		} else {
			b.WriteString(" -> ")
		}
		b.WriteString(r.Target.Name)
		for _, o := range r.Target.Options {
			b.WriteString(" " + o.Name)
			for _, a := range o.Args {
				b.WriteString("=" + a)
			}
		}
	}
	return b.String()
}

func TestParseIptablesRules(t *testing.T) {
	tests := []struct {
		name, line, want string
	}{
		{"short names", `-A FORWARD -s 10.0.0.0/8 -d 10.1.1.1 -i eth0 -o eth1 -p tcp -j ACCEPT`,
			`[ source=10.0.0.0/8][ destination=10.1.1.1][ in-interface=eth0][ out-interface=eth1][ protocol=tcp] -> ACCEPT`},
		{"long names", `-A FORWARD --src 1.2.3.4 --dst 5.6.7.8 --in-interface eth+ --protocol udp --jump DROP`,
			`[ source=1.2.3.4][ destination=5.6.7.8][ in-interface=eth+][ protocol=udp] -> DROP`},
		{"negation before", `-A FORWARD ! -s 10.0.0.0/8 ! -p icmp -j DROP`,
			`[ !source=10.0.0.0/8][ !protocol=icmp] -> DROP`},
		{"legacy negation after", `-A FORWARD -s ! 10.0.0.0/8 -p tcp --dport ! 22 -j DROP`,
			`[ !source=10.0.0.0/8][ protocol=tcp][tcp !dport=22] -> DROP`},
		{"implicit protocol match", `-A INPUT -p tcp --dport 22 -j ACCEPT`,
			`[ protocol=tcp][tcp dport=22] -> ACCEPT`},
		{"explicit protocol match", `-A INPUT -p tcp -m tcp --sport 1024:65535 --dport 22 -j ACCEPT`,
			`[ protocol=tcp][tcp sport=1024:65535 dport=22] -> ACCEPT`},
		{"dport after another module goes to tcp", `-A INPUT -p tcp -m conntrack --ctstate NEW --dport 22 -j ACCEPT`,
			`[ protocol=tcp][conntrack ctstate=NEW][tcp dport=22] -> ACCEPT`},
		{"several modules", `-A INPUT -p udp -m multiport --dports 53,123 -m conntrack --ctstate NEW -m comment --comment "dns and ntp" -j ACCEPT`,
			`[ protocol=udp][multiport dports=53,123][conntrack ctstate=NEW][comment comment=dns and ntp] -> ACCEPT`},
		{"negated module option", `-A INPUT -m set ! --match-set blocked src,dst -j DROP`,
			`[set !match-set=blocked=src,dst] -> DROP`},
		{"tcp flags and syn", `-A INPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN --syn -j ACCEPT`,
			`[ protocol=tcp][tcp tcp-flags=FIN,SYN,RST,ACK=SYN syn] -> ACCEPT`},
		{"fragment", `-A INPUT -f -j DROP`, `[ fragment] -> DROP`},
		{"target options", `-A INPUT -j LOG --log-prefix "IN DROP: " --log-level 4 --log-uid`,
			` -> LOG log-prefix=IN DROP:  log-level=4 log-uid`},
		{"free text starting with a dash", `-A INPUT -m comment --comment "--x" -j LOG --log-prefix "-- DROP: "`,
			`[comment comment=--x] -> LOG log-prefix=-- DROP: `},
		{"reject", `-A INPUT -p tcp -j REJECT --reject-with tcp-reset`,
			`[ protocol=tcp] -> REJECT reject-with=tcp-reset`},
		{"dnat", `-A PREROUTING -i eth0 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.1.1.10:8080`,
			`[ in-interface=eth0][ protocol=tcp][tcp dport=80] -> DNAT to-destination=10.1.1.10:8080`},
		{"masquerade flags", `-A POSTROUTING -o eth0 -j MASQUERADE --random-fully`,
			`[ out-interface=eth0] -> MASQUERADE random-fully`},
		{"goto", `-A FORWARD -i wg0 -g FROM_WG`, `[ in-interface=wg0] goto FROM_WG`},
		{"counting rule", `-A FORWARD -s 10.0.0.1`, `[ source=10.0.0.1]`},
		{"mark", `-A PREROUTING -m mark ! --mark 0x1/0xff -j MARK --set-xmark 0x2/0xffffffff`,
			`[mark !mark=0x1/0xff] -> MARK set-xmark=0x2/0xffffffff`},
		{"icmp type", `-A INPUT -p icmp -m icmp --icmp-type 8 -j ACCEPT`,
			`[ protocol=icmp][icmp icmp-type=8] -> ACCEPT`},
		{"unknown module options", `-A INPUT -m recent --rcheck --seconds 60 --name SSH -j DROP`,
			`[recent rcheck seconds=60 name=SSH] -> DROP`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:FROM_WG - [0:0]\n" + tt.line + "\nCOMMIT\n"
			if strings.Contains(tt.line, "ROUTING") {
				text = "*nat\n" + tt.line + "\nCOMMIT\n"
			}
			tabs, finds, err := ParseIptablesSave("f", 1, text)
			if err != nil {
				t.Fatal(err)
			}
			if len(finds) != 0 {
				t.Fatalf("findings: %v", finds)
			}
			var r *IptRule
			for _, c := range tabs[0].Chains {
				if len(c.Rules) > 0 {
					r = c.Rules[0]
				}
			}
			if r == nil {
				t.Fatal("no rule parsed")
			}
			if got := ruleString(r); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if r.Text != tt.line {
				t.Errorf("Text = %q", r.Text)
			}
		})
	}
}

func TestParseIptablesSaveStructure(t *testing.T) {
	text := `# Generated by iptables-save v1.8.7
*filter
:INPUT DROP [10:600]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:MYCHAIN - [0:0]
[5:300] -A INPUT -i lo -j ACCEPT
[0:0] -A INPUT -j MYCHAIN
-A MYCHAIN -j RETURN
-I INPUT -p icmp -j ACCEPT
-I INPUT 2 -p udp -j ACCEPT
-A PREROUTING -j ACCEPT
-A MYCHAIN -s 1.1.1.1,2.2.2.2 -d 3.3.3.3,4.4.4.4 -j ACCEPT
COMMIT
*nat
-A POSTROUTING -o eth0 -j MASQUERADE
`
	tabs, finds, err := ParseIptablesSave("r1.txt", 100, text)
	if err != nil {
		t.Fatal(err)
	}
	if len(tabs) != 2 || tabs[0].Name != "filter" || tabs[1].Name != "nat" {
		t.Fatalf("tables: %v", tabs)
	}
	f := tabs[0]
	if f.Pos.Line != 101 {
		t.Errorf("table pos %v", f.Pos)
	}
	in := f.Chain("INPUT")
	if in.Policy != "DROP" || in.Packets != 10 || in.Bytes != 600 || !in.Builtin() {
		t.Errorf("INPUT chain %+v", in)
	}
	if c := f.Chain("MYCHAIN"); c.Policy != "" || c.Builtin() || len(c.Rules) != 5 {
		t.Errorf("MYCHAIN %+v", c)
	}
	var got []string
	for _, r := range in.Rules {
		got = append(got, r.Text+"@"+r.Pos.String())
		if r.Index != len(got) {
			t.Errorf("rule %q index %d, want %d", r.Text, r.Index, len(got))
		}
	}
	want := []string{"-I INPUT -p icmp -j ACCEPT@r1.txt:109", "-I INPUT 2 -p udp -j ACCEPT@r1.txt:110",
		"-A INPUT -i lo -j ACCEPT@r1.txt:106", "-A INPUT -j MYCHAIN@r1.txt:107"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("INPUT rules\n got %q\nwant %q", got, want)
	}
	if r := in.Rules[2]; r.Packets != 5 || r.Bytes != 300 {
		t.Errorf("counters %d:%d", r.Packets, r.Bytes)
	}
	// "-s a,b -d c,d" is four rules to the kernel, sources outer.
	var exp []string
	for _, r := range f.Chain("MYCHAIN").Rules[1:] {
		exp = append(exp, fmt.Sprintf("%d:%s>%s@%d", r.Index, r.Matches[0].Options[0].Args[0], r.Matches[1].Options[0].Args[0], r.Pos.Line))
	}
	if want := []string{"2:1.1.1.1>3.3.3.3@112", "3:1.1.1.1>4.4.4.4@112", "4:2.2.2.2>3.3.3.3@112", "5:2.2.2.2>4.4.4.4@112"}; !reflect.DeepEqual(exp, want) {
		t.Errorf("expanded rules %q, want %q", exp, want)
	}
	if r := in.Rules[2]; r.Packets != 5 || r.Bytes != 300 {
		t.Errorf("counters %d:%d", r.Packets, r.Bytes)
	}
	pre := f.Chain("PREROUTING")
	if pre == nil || pre.Builtin() || len(pre.Rules) != 1 {
		t.Fatalf("undeclared PREROUTING in filter: %+v", pre)
	}
	wantF := []string{
		"r1.txt:111: warning: chain PREROUTING not declared in table filter (iptables-restore would refuse this line)",
		"r1.txt:115: warning: table nat has no COMMIT (iptables-restore would not apply it)",
	}
	var gotF []string
	for _, x := range finds {
		gotF = append(gotF, x.String())
	}
	if !reflect.DeepEqual(gotF, wantF) {
		t.Errorf("findings\n got %q\nwant %q", gotF, wantF)
	}
	if c := tabs[1].Chain("POSTROUTING"); c == nil || c.Policy != "ACCEPT" {
		t.Errorf("built-in POSTROUTING without declaration: %+v", c)
	}
}

func TestParseIptablesSaveErrors(t *testing.T) {
	tests := []struct {
		name, text string
		err        string // error substring, "" = none
		finding    string // finding substring, "" = none expected
	}{
		{"unterminated quote", "*filter\n-A INPUT -j LOG --log-prefix \"oops\nCOMMIT\n", "f:2: unterminated quote", ""},
		{"rule outside table", "-A INPUT -j ACCEPT\n", "", "f:1: error: line outside a table"},
		{"unknown command", "*filter\n-Z INPUT\nCOMMIT\n", "", "f:2: error: unsupported iptables-restore command"},
		{"stray argument", "*filter\n-A INPUT foo -j ACCEPT\nCOMMIT\n", "", `f:2: error: unexpected argument "foo"`},
		{"bad counters", "*filter\n[1:x] -A INPUT -j ACCEPT\nCOMMIT\n", "", "f:2: error: bad counters"},
		{"policy on user chain", "*filter\n:X DROP [0:0]\nCOMMIT\n", "", "user chain X cannot have a policy"},
		{"unknown table", "*bogus\nCOMMIT\n", "", `unknown table "bogus"`},
		{"missing arg", "*filter\n-A INPUT -p tcp --tcp-flags SYN\nCOMMIT\n", "", "needs 2 argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, finds, err := ParseIptablesSave("f", 1, tt.text)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, f := range finds {
				found = found || strings.Contains(f.String(), tt.finding)
			}
			if !found {
				t.Errorf("findings %v lack %q", finds, tt.finding)
			}
		})
	}
}

// corpusIptablesSections extracts every iptables_save section of the
// predecessor's raw facts, keyed by router, with the line its output starts on.
func corpusIptablesSections(t testing.TB) map[string]struct {
	first int
	text  string
} {
	dir := corpus(t, "raw_facts")
	files, _ := filepath.Glob(filepath.Join(dir, "*_facts.txt"))
	if len(files) == 0 {
		t.Fatalf("no raw facts in %s", dir)
	}
	out := map[string]struct {
		first int
		text  string
	}{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		in, body, first := false, false, 0
		var sec []string
		for i, l := range lines {
			switch {
			case l == "=== TSIM_SECTION_START:iptables_save ===":
				in, body, sec = true, false, nil
			case in && !body && l == "---":
				body, first = true, i+2
			case in && body && strings.HasPrefix(l, "EXIT_CODE:"):
				in = false
				out[strings.TrimSuffix(filepath.Base(f), "_facts.txt")] = struct {
					first int
					text  string
				}{first, strings.Join(sec, "\n")}
			case in && body:
				sec = append(sec, l)
			}
		}
	}
	return out
}

func TestParseIptablesSaveCorpusGolden(t *testing.T) {
	for router, s := range corpusIptablesSections(t) {
		t.Run(router, func(t *testing.T) {
			file := router + "_facts.txt"
			tabs, finds, err := ParseIptablesSave(file, s.first, s.text)
			if err != nil {
				t.Fatal(err)
			}
			rules := 0
			for _, tb := range tabs {
				for _, c := range tb.Chains {
					for _, r := range c.Rules {
						rules++
						// Every rule line must be at its position in the file.
						src := strings.Split(s.text, "\n")[r.Pos.Line-s.first]
						if strings.TrimSpace(src) != r.Text {
							t.Errorf("%s: text %q, source line %q", r.Pos, r.Text, src)
						}
					}
				}
			}
			if want := strings.Count(s.text, "\n-A "); rules != want {
				t.Errorf("parsed %d rules, section has %d -A lines", rules, want)
			}
			got, err := json.MarshalIndent(struct {
				Tables   []*IPTable `json:"tables"`
				Findings []Finding  `json:"findings"`
			}{tabs, finds}, "", " ")
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "iptables", router+".json")
			if *updateIpt {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run Golden -update-iptables)", err)
			}
			if !bytes.Equal(bytes.TrimSpace(want), got) {
				t.Errorf("%s differs from the parse; rerun with -update-iptables and review the diff", golden)
			}
		})
	}
}

func FuzzIptablesSave(f *testing.F) {
	f.Add("*filter\n:INPUT DROP [0:0]\n:X - [0:0]\n[1:2] -A INPUT -s ! 10.0.0.0/8 -p tcp --dport 22 -m comment --comment \"a \\\" b\" -j X\n-I X 1 -j LOG --log-prefix \"p: \"\nCOMMIT\n")
	f.Add("*nat\n-A PREROUTING -i eth0 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.1.1.10\n-P INPUT DROP\n-N Y\n")
	f.Add("*mangle\n-A PREROUTING -m set ! --match-set s src,dst -j MARK --set-xmark 0x1/0xff\n-A PREROUTING !\nCOMMIT\n*raw\n-I\n-I PREROUTING 9 -j CT --notrack\n")
	f.Fuzz(func(t *testing.T, text string) {
		tabs, finds, err := ParseIptablesSave("fuzz", 1, text)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Fatalf("error without position: %v", err)
			}
			return
		}
		for _, x := range finds {
			if x.Pos.File != "fuzz" || x.Message == "" {
				t.Fatalf("bad finding %+v", x)
			}
		}
		for _, tb := range tabs {
			for _, c := range tb.Chains {
				for i, r := range c.Rules {
					if r.Index != i+1 || r.Chain != c.Name {
						t.Fatalf("rule %d of %s has index %d chain %s", i+1, c.Name, r.Index, r.Chain)
					}
				}
			}
		}
	})
}
