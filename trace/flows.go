package trace

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/portspec"
	"github.com/tsim-dev/tsim/internal/tsimerr"
)

// FlowsFromSpec builds one flow per service of spec from src to dst (an
// empty spec is one ICMP echo flow), with ids f1, f2, … . sport 0 leaves the
// source port unset (the engine then uses EphemeralPort).
func FlowsFromSpec(src, dst, spec string, sport int) ([]*doc.Flow, error) {
	var out []*doc.Flow
	for _, a := range []struct{ what, v string }{{"source", src}, {"destination", dst}} {
		if _, err := netip.ParseAddr(a.v); err != nil {
			return nil, tsimerr.Inputf("%s %q is not an IP address", a.what, a.v)
		}
	}
	if sport < 0 || sport > 65535 {
		return nil, tsimerr.Inputf("source port %d out of range 0-65535", sport)
	}
	var svcs []portspec.Service
	if strings.TrimSpace(spec) == "" {
		svcs = []portspec.Service{{Proto: "icmp", Token: "icmp"}}
	} else {
		var err error
		if svcs, err = portspec.Parse(spec); err != nil {
			return nil, err
		}
	}
	for _, s := range svcs {
		f := &doc.Flow{ID: "f" + strconv.Itoa(len(out)+1), Src: src, Dst: dst, Proto: s.Proto, DPort: s.Port,
			Service: s.Token}
		if s.Proto != "icmp" {
			f.SPort = sport
		}
		out = append(out, f)
	}
	return out, nil
}
