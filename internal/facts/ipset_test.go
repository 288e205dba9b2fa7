package facts

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseIpsetSave(t *testing.T) {
	in := `create web hash:ip,port family inet hashsize 1024 maxelem 65536
add web 10.2.5.10,tcp:80
add web 10.2.6.10,tcp:443 timeout 300 comment "front end"

create nets hash:net family inet
add nets 10.0.0.0/8
add nets 10.1.0.0/16 nomatch
create ports bitmap:port range 80-8080`
	sets, err := ParseIpsetSave("f", lines(5, in))
	if err != nil {
		t.Fatal(err)
	}
	type mem struct {
		value   string
		nomatch bool
		opts    []string
		line    int
	}
	want := []struct {
		name, typ string
		opts      []string
		line      int
		members   []mem
	}{
		{"web", "hash:ip,port", []string{"family", "inet", "hashsize", "1024", "maxelem", "65536"}, 5, []mem{
			{"10.2.5.10,tcp:80", false, nil, 6}, {"10.2.6.10,tcp:443", false, []string{"timeout", "300", "comment", `"front end"`}, 7}}},
		{"nets", "hash:net", []string{"family", "inet"}, 9, []mem{{"10.0.0.0/8", false, nil, 10}, {"10.1.0.0/16", true, nil, 11}}},
		{"ports", "bitmap:port", []string{"range", "80-8080"}, 12, nil},
	}
	if len(sets) != len(want) {
		t.Fatalf("got %d sets", len(sets))
	}
	for i, w := range want {
		s := sets[i]
		if s.Name != w.name || s.Type != w.typ || !reflect.DeepEqual(s.Options, w.opts) || s.Pos.Line != w.line || s.Members == nil {
			t.Errorf("set %d = %+v, want %+v", i, s, w)
		}
		if len(s.Members) != len(w.members) {
			t.Fatalf("set %s: %d members", s.Name, len(s.Members))
		}
		for j, wm := range w.members {
			m := s.Members[j]
			if m.Value != wm.value || m.Nomatch != wm.nomatch || !reflect.DeepEqual(m.Options, wm.opts) || m.Pos.Line != wm.line || !strings.HasPrefix(m.Text, "add "+s.Name) {
				t.Errorf("%s member %d = %+v, want %+v", s.Name, j, m, wm)
			}
		}
	}
}

func TestParseIpsetSaveErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"add nosuch 10.0.0.1", `f:1: ipset "add nosuch 10.0.0.1": set "nosuch" is not created before this member`},
		{"create a hash:ip\ncreate a hash:ip", `f:2: ipset "create a hash:ip": set "a" created twice`},
		{"create a", "f:1: ipset \"create a\": create needs a name and a type"},
		{"create a hash:ip\nadd a", `f:2: ipset "add a": add needs a set name and a value`},
		{"flush a", `f:1: ipset "flush a": expected create or add`},
		{`create a hash:ip comment "x`, `f:1: ipset "create a hash:ip comment \"x": unterminated quote`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseIpsetSave("f", lines(1, tt.in))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v\nwant    %s", err, tt.want)
			}
		})
	}
}
