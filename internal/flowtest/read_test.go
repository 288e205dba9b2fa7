package flowtest

import (
	"strconv"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/tsimerr"
)

// summary is a compact view of a parsed file: line:flows=expect ….
func summary(t *testing.T, in string) string {
	t.Helper()
	f, err := Read(strings.NewReader(in), "flows.csv")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range f.Lines {
		var fs []string
		for _, x := range l.Flows {
			s := x.ID + ":" + x.Src + ">" + x.Dst + ":" + x.Proto
			if x.DPort != 0 {
				s += "/" + strconv.Itoa(x.DPort)
			}
			if x.SPort != 0 {
				s += ",s" + strconv.Itoa(x.SPort)
			}
			if x.Ingress != "" {
				s += "@" + x.Ingress
			}
			if x.Line != l.N || x.Expect != l.Expect {
				t.Fatalf("flow %s: line %d expect %q, want %d %q", x.ID, x.Line, x.Expect, l.N, l.Expect)
			}
			fs = append(fs, s)
		}
		e := l.Expect
		if e == "" {
			e = "-"
		}
		name := ""
		if l.Name != "" {
			name = "[" + l.Name + "]"
		}
		out = append(out, strconv.Itoa(l.N)+name+" "+strings.Join(fs, " ")+" ="+e)
	}
	return strings.Join(out, " | ")
}

func TestRead(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"header and comments", "# flows\nsrc,dst,spec,expect\n10.0.1.5,10.0.2.5,ssh,allow\n\n10.0.1.5, 10.0.3.9 ,icmp\n",
			"3 f1:10.0.1.5>10.0.2.5:tcp/22 =allow | 5 f2:10.0.1.5>10.0.3.9:icmp =-"},
		{"spreadsheet: CRLF, BOM, quoted spec, empty expect cell", "\ufeffsrc,dst,spec,expect\r\n10.0.1.5,10.0.2.5,\"https,3306/tcp\",\r\n10.0.1.5,10.0.2.5,ssh,deny\r\n",
			"2 f1:10.0.1.5>10.0.2.5:tcp/443 f2:10.0.1.5>10.0.2.5:tcp/3306 =- | 3 f3:10.0.1.5>10.0.2.5:tcp/22 =deny"},
		{"trailing empty column", "src,dst,spec,expect\n10.0.1.5,10.0.2.5,https,\n", "2 f1:10.0.1.5>10.0.2.5:tcp/443 =-"},
		{"rows of empty cells skipped", "src,dst,spec,expect\n10.0.1.5,10.0.2.5,https,pass\n,,,\n", "2 f1:10.0.1.5>10.0.2.5:tcp/443 =allow"},
		{"header in any order with extra columns", "Name,Expect,Dst,Src,Services,Comment,Ingress,Sport\nweb,permit,10.0.2.5,10.0.1.5,https,\"see ticket, 42\",r1:eth0,4000\n",
			"2[web] f1:10.0.1.5>10.0.2.5:tcp/443,s4000@r1:eth0 =allow"},
		{"every expect word", "src,dst,spec,expect\n" +
			"1.1.1.1,2.2.2.2,1,allow\n1.1.1.1,2.2.2.2,2,Permit\n1.1.1.1,2.2.2.2,3,ACCEPT\n1.1.1.1,2.2.2.2,4,pass\n" +
			"1.1.1.1,2.2.2.2,5,deny\n1.1.1.1,2.2.2.2,6,block\n1.1.1.1,2.2.2.2,7,drop\n1.1.1.1,2.2.2.2,8,reject\n",
			"2 f1:1.1.1.1>2.2.2.2:tcp/1 =allow | 3 f2:1.1.1.1>2.2.2.2:tcp/2 =allow | 4 f3:1.1.1.1>2.2.2.2:tcp/3 =allow | 5 f4:1.1.1.1>2.2.2.2:tcp/4 =allow | " +
				"6 f5:1.1.1.1>2.2.2.2:tcp/5 =deny | 7 f6:1.1.1.1>2.2.2.2:tcp/6 =deny | 8 f7:1.1.1.1>2.2.2.2:tcp/7 =deny | 9 f8:1.1.1.1>2.2.2.2:tcp/8 =deny"},
		{"no header: quoted spec", `10.0.1.5,10.0.2.5,"22,443/tcp",deny`, "1 f1:10.0.1.5>10.0.2.5:tcp/22 f2:10.0.1.5>10.0.2.5:tcp/443 =deny"},
		{"no header: unquoted spec with expect", "10.0.1.5,10.0.2.5,22,443,blocked", "1 f1:10.0.1.5>10.0.2.5:tcp/22 f2:10.0.1.5>10.0.2.5:tcp/443 =deny"},
		{"no header: unquoted spec without expect", "10.0.1.5,10.0.2.5,22,53/udp", "1 f1:10.0.1.5>10.0.2.5:tcp/22 f2:10.0.1.5>10.0.2.5:udp/53 =-"},
		{"no header: unquoted names", "10.0.1.5,10.0.2.5,ssh,https", "1 f1:10.0.1.5>10.0.2.5:tcp/22 f2:10.0.1.5>10.0.2.5:tcp/443 =-"},
		{"no header: no spec", "10.0.1.5,10.0.2.5", "1 f1:10.0.1.5>10.0.2.5:icmp =-"},
		{"ndjson spec", `{"src":"10.0.1.5","dst":"10.0.2.5","spec":"https","expect":"allow","sport":5000,"name":"web"}`, "1[web] f1:10.0.1.5>10.0.2.5:tcp/443,s5000 =allow"},
		{"ndjson flow", `{"src":"1.2.3.4","dst":"10.0.2.5","proto":"udp","dport":53,"ingress":"r2:eth9"}`, "1 f1:1.2.3.4>10.0.2.5:udp/53@r2:eth9 =-"},
		{"mixed", "{\"src\":\"10.0.1.5\",\"dst\":\"10.0.2.5\"}\n10.0.1.5,10.0.2.5,80", "1 f1:10.0.1.5>10.0.2.5:icmp =- | 2 f2:10.0.1.5>10.0.2.5:tcp/80 =-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summary(t, tt.in); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "# nothing\n", "flows.csv: no flows"},
		{"unknown expect word names the column", "src,dst,spec,expect\n10.0.1.5,10.0.2.5,ssh,allow\n10.0.1.5,10.0.2.5,ssh,alow\n",
			`flows.csv:3: column expect: unknown word "alow"`},
		{"unknown expect word without header", "10.0.1.5,10.0.2.5,ssh,maybe", `flows.csv:1: column 4 (expect): unknown word "maybe"`},
		{"unknown expect in json", `{"src":"10.0.1.5","dst":"10.0.2.5","expect":"sure"}`, `flows.csv:1: field expect: unknown word "sure"`},
		{"bad address", "src,dst,spec\n10.0.1.5,10.0.2.5,ssh\n10.0.1.x,10.0.2.5,ssh\n", `flows.csv:3: column src: "10.0.1.x" is not an IP address`},
		{"empty dst", "src,dst,spec\n10.0.1.5,,ssh\n", "flows.csv:2: column dst: empty"},
		{"bad spec", "10.0.1.5,10.0.2.5,ssh\n\n10.0.1.5,10.0.2.5,bogus\n", "flows.csv:3: column spec:"},
		{"bad sport", "src,dst,sport\n10.0.1.5,10.0.2.5,x\n", `flows.csv:2: column sport: "x"`},
		{"unknown column", "src,dst,spec,expcet\n", `flows.csv:1: header: unknown column "expcet"`},
		{"header without dst", "src,spec\n", "flows.csv:1: header: no dst column"},
		{"too many fields", "dst,src,spec\n10.0.2.5,10.0.1.5,https,3306/tcp\n", "flows.csv:2: 4 fields, the header names 3"},
		{"late header", "10.0.1.5,10.0.2.5\nsrc,dst\n", "flows.csv:2: header row"},
		{"one field", "10.0.1.5", "flows.csv:1: want src,dst"},
		{"bad json", `{"src":"10.0.1.5",`, "flows.csv:1: bad JSON"},
		{"unknown json field", `{"src":"10.0.1.5","dst":"10.0.2.5","port":22}`, "flows.csv:1: bad JSON"},
		{"json spec and proto", `{"src":"10.0.1.5","dst":"10.0.2.5","spec":"22","proto":"tcp","dport":22}`, "flows.csv:1: give either"},
		{"json bad dport", `{"src":"10.0.1.5","dst":"10.0.2.5","proto":"tcp"}`, "flows.csv:1: field dport"},
		{"csv bad quote", `10.0.1.5,10.0.2.5,"22`, "flows.csv:1: bad CSV"},
		{"bad ingress", "src,dst,ingress\n10.0.1.5,10.0.2.5,r1\n", "flows.csv:2: column ingress"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(tt.in), "flows.csv")
			if err == nil {
				t.Fatal("no error")
			}
			if tsimerr.ExitCode(err) != tsimerr.ExitInput || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line starting %q, exit 2", err, tt.want)
			}
		})
	}
}

func FuzzRead(f *testing.F) {
	for _, s := range []string{"src,dst,spec,expect\r\n10.0.1.5,10.0.2.5,\"ssh,https\",allow\r\n", `{"src":"10.0.1.5","dst":"10.0.2.5","spec":"https"}`,
		"10.0.1.5,10.0.2.5,\"22,443\"\n# x\n", "10.0.1.5,10.0.2.5,1-1024", "name,src,dst\nx,1.2.3.4,5.6.7.8\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		file, err := Read(strings.NewReader(in), "f")
		if err != nil {
			if tsimerr.ExitCode(err) != tsimerr.ExitInput || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q is not a one-line input error", err)
			}
			return
		}
		for i, x := range file.Flows() {
			if x.ID != "f"+strconv.Itoa(i+1) || x.Src == "" || x.Dst == "" || x.Line < 1 {
				t.Fatalf("flow %d: %+v", i, x)
			}
		}
	})
}

func TestShard(t *testing.T) {
	in := "src,dst\n1.1.1.1,2.2.2.1\n1.1.1.1,2.2.2.2\n1.1.1.1,2.2.2.3\n1.1.1.1,2.2.2.4\n1.1.1.1,2.2.2.5\n"
	f, err := Read(strings.NewReader(in), "f.csv")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]int{}
	for i := 1; i <= 3; i++ {
		var lines []string
		for _, l := range f.Shard(i, 3).Lines {
			seen[l.N]++
			lines = append(lines, strconv.Itoa(l.N))
		}
		want := map[int]string{1: "2 5", 2: "3 6", 3: "4"}[i]
		if got := strings.Join(lines, " "); got != want {
			t.Errorf("shard %d/3: lines %s, want %s", i, got, want)
		}
	}
	if len(seen) != 5 {
		t.Errorf("the shards together run %d lines, want 5: %v", len(seen), seen)
	}
	for _, bad := range []string{"0/3", "4/3", "1/0", "x", "1/", "/2", "-1/2"} {
		if _, _, err := ParseShard(bad); tsimerr.ExitCode(err) != tsimerr.ExitInput {
			t.Errorf("ParseShard(%q): %v", bad, err)
		}
	}
	if i, n, err := ParseShard("2/4"); i != 2 || n != 4 || err != nil {
		t.Errorf("ParseShard(2/4) = %d %d %v", i, n, err)
	}
}
