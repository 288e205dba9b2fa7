// Package portspec owns the SPEC grammar of `tsim trace -p` (DESIGN §5): a
// comma list of PORT[/PROTO], A-B[/PROTO], service names and icmp/ping,
// turned into one Service per port. It knows nothing of facts or tracing.
package portspec

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tsim-dev/tsim/internal/tsimerr"
)

// MaxServices bounds the expansion of ranges so a typo like 1-65535 does not
// create tens of thousands of flows.
const MaxServices = 1024

// Service is one protocol/port pair to probe. Port is 0 for icmp.
type Service struct {
	Proto string // tcp | udp | icmp
	Port  int
	// Token is the SPEC token the service came from ("ssh", "8000-8002/tcp").
	Token string
}

// String gives the canonical PORT/PROTO form ("icmp" for icmp).
func (s Service) String() string {
	if s.Proto == "icmp" {
		return "icmp"
	}
	return strconv.Itoa(s.Port) + "/" + s.Proto
}

type named struct {
	proto string
	port  int
}

// services are the well-known names a network engineer types; the port is
// the IANA assignment and the protocol the one the service is normally
// reached over.
var services = map[string]named{
	"ftp-data": {"tcp", 20}, "ftp": {"tcp", 21}, "ssh": {"tcp", 22}, "telnet": {"tcp", 23},
	"smtp": {"tcp", 25}, "dns": {"udp", 53}, "domain": {"udp", 53}, "dhcp": {"udp", 67},
	"tftp": {"udp", 69}, "http": {"tcp", 80}, "www": {"tcp", 80}, "kerberos": {"tcp", 88},
	"pop3": {"tcp", 110}, "ntp": {"udp", 123}, "imap": {"tcp", 143}, "snmp": {"udp", 161},
	"snmptrap": {"udp", 162}, "bgp": {"tcp", 179}, "ldap": {"tcp", 389}, "https": {"tcp", 443},
	"smb": {"tcp", 445}, "microsoft-ds": {"tcp", 445}, "syslog": {"udp", 514},
	"submission": {"tcp", 587}, "ldaps": {"tcp", 636}, "imaps": {"tcp", 993},
	"pop3s": {"tcp", 995}, "mssql": {"tcp", 1433}, "oracle": {"tcp", 1521},
	"radius": {"udp", 1812}, "nfs": {"tcp", 2049}, "mysql": {"tcp", 3306},
	"rdp": {"tcp", 3389}, "postgres": {"tcp", 5432}, "postgresql": {"tcp", 5432},
	"vnc": {"tcp", 5900}, "redis": {"tcp", 6379}, "http-alt": {"tcp", 8080},
	"https-alt": {"tcp", 8443}, "wireguard": {"udp", 51820}, "openvpn": {"udp", 1194},
	"sip": {"udp", 5060}, "mqtt": {"tcp", 1883}, "kafka": {"tcp", 9092},
}

// Names returns the known service names (for help texts and completions).
func Names() []string {
	out := make([]string, 0, len(services)+2)
	for k := range services {
		out = append(out, k)
	}
	return append(out, "icmp", "ping")
}

// Parse parses SPEC. An empty SPEC is an error; callers default to icmp
// themselves. Errors are input errors naming the offending token.
func Parse(spec string) ([]Service, error) {
	if strings.TrimSpace(spec) == "" {
		return nil, tsimerr.Inputf("port spec: empty")
	}
	var out []Service
	for _, raw := range strings.Split(spec, ",") {
		tok := strings.TrimSpace(raw)
		svcs, err := parseToken(tok)
		if err != nil {
			return nil, tsimerr.Inputf("port spec: token %q: %w", tok, err)
		}
		if len(out)+len(svcs) > MaxServices {
			return nil, tsimerr.Inputf("port spec: token %q: more than %d services in total", tok, MaxServices)
		}
		out = append(out, svcs...)
	}
	return out, nil
}

func parseToken(tok string) ([]Service, error) {
	if tok == "" {
		return nil, fmt.Errorf("empty entry")
	}
	lower := strings.ToLower(tok)
	if lower == "icmp" || lower == "ping" {
		return []Service{{Proto: "icmp", Token: tok}}, nil
	}
	body, proto, hasProto := strings.Cut(lower, "/")
	if hasProto {
		switch proto {
		case "tcp", "udp":
		case "icmp":
			return nil, fmt.Errorf("icmp takes no port (write icmp)")
		default:
			return nil, fmt.Errorf("unknown protocol %q (want tcp, udp or icmp)", proto)
		}
	}
	if s, ok := services[body]; ok {
		p := s.proto
		if hasProto {
			p = proto
		}
		return []Service{{Proto: p, Port: s.port, Token: tok}}, nil
	}
	if !hasProto {
		proto = "tcp"
	}
	lo, hi, isRange := strings.Cut(body, "-")
	a, err := port(lo)
	if err != nil {
		return nil, err
	}
	b := a
	if isRange {
		if b, err = port(hi); err != nil {
			return nil, err
		}
		if b < a {
			return nil, fmt.Errorf("range %d-%d is reversed", a, b)
		}
		if b-a+1 > MaxServices {
			return nil, fmt.Errorf("range %d-%d has more than %d ports", a, b, MaxServices)
		}
	}
	out := make([]Service, 0, b-a+1)
	for p := a; p <= b; p++ {
		out = append(out, Service{Proto: proto, Port: p, Token: tok})
	}
	return out, nil
}

func port(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("missing port")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("not a port number or known service name")
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %s out of range 1-65535", s)
	}
	return n, nil
}
