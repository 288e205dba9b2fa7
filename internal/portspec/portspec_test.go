package portspec

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tsim-dev/tsim/internal/tsimerr"
)

func TestParse(t *testing.T) {
	tests := []struct {
		spec string
		want []string // Service.String()
	}{
		{"22", []string{"22/tcp"}},
		{"22/tcp", []string{"22/tcp"}},
		{"53/udp", []string{"53/udp"}},
		{"ssh", []string{"22/tcp"}},
		{"dns", []string{"53/udp"}},
		{"dns/tcp", []string{"53/tcp"}},
		{"HTTPS", []string{"443/tcp"}},
		{"postgresql,postgres", []string{"5432/tcp", "5432/tcp"}},
		{"icmp", []string{"icmp"}},
		{"ping", []string{"icmp"}},
		{"8000-8002/udp", []string{"8000/udp", "8001/udp", "8002/udp"}},
		{" 22/tcp , 443 ,icmp", []string{"22/tcp", "443/tcp", "icmp"}},
		{"1-1024", nil}, // checked by length below
		{"ntp,snmp,syslog,ldap,ldaps,smtp", []string{"123/udp", "161/udp", "514/udp", "389/tcp", "636/tcp", "25/tcp"}},
		{"rdp,mysql,imap,imaps,pop3,pop3s,ftp,telnet", []string{"3389/tcp", "3306/tcp", "143/tcp", "993/tcp", "110/tcp", "995/tcp", "21/tcp", "23/tcp"}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := Parse(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				if len(got) != 1024 || got[0].Port != 1 || got[1023].Port != 1024 {
					t.Fatalf("1-1024: got %d services", len(got))
				}
				return
			}
			var s []string
			for _, g := range got {
				s = append(s, g.String())
			}
			if !reflect.DeepEqual(s, tt.want) {
				t.Fatalf("got %v want %v", s, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ spec, token string }{
		{"", ""},
		{"22,,80", `""`},
		{"bogus", `"bogus"`},
		{"22/sctp", `"22/sctp"`},
		{"0", `"0"`},
		{"65536", `"65536"`},
		{"100-90", `"100-90"`},
		{"1-2000", `"1-2000"`},
		{"1-1000,2000-2100", `"2000-2100"`},
		{"22/icmp", `"22/icmp"`},
		{"-5", `"-5"`},
		{"5-", `"5-"`},
		{"ssh/", `"ssh/"`},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			_, err := Parse(tt.spec)
			if err == nil {
				t.Fatal("no error")
			}
			if tsimerr.ExitCode(err) != tsimerr.ExitInput {
				t.Fatalf("exit code %d, want 2", tsimerr.ExitCode(err))
			}
			var te *tsimerr.Error
			if !errors.As(err, &te) {
				t.Fatal("not a tsimerr")
			}
			if !strings.Contains(err.Error(), tt.token) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q does not name %s on one line", err, tt.token)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"22", "ssh,https", "8000-8010/udp", "icmp", "1-1024", "x/y", "53/udp,dns/tcp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		got, err := Parse(spec)
		if err != nil {
			if got != nil {
				t.Fatal("services with error")
			}
			return
		}
		if len(got) == 0 || len(got) > MaxServices {
			t.Fatalf("%q: %d services", spec, len(got))
		}
		for _, s := range got {
			switch s.Proto {
			case "icmp":
				if s.Port != 0 {
					t.Fatalf("icmp with port %d", s.Port)
				}
			case "tcp", "udp":
				if s.Port < 1 || s.Port > 65535 {
					t.Fatalf("port %d", s.Port)
				}
			default:
				t.Fatalf("proto %q", s.Proto)
			}
		}
	})
}
