// Command scale-curves measures how tsim's cost grows with the size of the
// network and of the flows suite, on networks written by
// scripts/gen-network, and renders the figures for docs/scale.md.
//
//	go build -o /tmp/tsim ./cmd/tsim && go build -o /tmp/gen-network ./scripts/gen-network
//	go run ./scripts/scale-curves measure --tsim /tmp/tsim --gen /tmp/gen-network \
//	    --routers 10,50,200,500 --flows 100,1000,10000 --lab-flows 100,1000 \
//	    --work /var/tmp/scale -o docs/scale/results.ndjson
//	go run ./scripts/scale-curves render -i docs/scale/results.ndjson -o docs/scale
//
// Labs of every router (`--scope all`), records with "scope": "all":
//
//	go run ./scripts/scale-curves measure --tsim /tmp/tsim --gen /tmp/gen-network \
//	    --routers 200,500 --flows 100 --lab-flows 100 --only floor,lab,run --scope all \
//	    --work /var/tmp/scale-all -o docs/scale/results.ndjson
//
// measure appends one JSON line per figure to -o (so a long run that is
// stopped keeps what it measured), each with the load average at that
// moment: the machine these figures come from was shared. render writes
// table.md and curves.png (drawn as a PDF with fpdf, rasterized by
// pdftoppm from poppler-utils).
//
// Figures (N routers, M flows):
//   - load: facts.Load of the raw facts directory, in process (median of 3);
//   - trace: the M flows traced in process after the load (first pass, every
//     chain compiled on first use), per flow; and 100,000 traces cycling
//     through the flows (per 100k);
//   - trace-process: `tsim trace --flows` as a process (wall, peak RSS);
//   - run: `tsim run --flows` lab to PDF as a process: wall, peak RSS, and the
//     stages from --progress json (hosts up, reach, report, hosts down);
//   - floor: the same router namespaces, veths, bridges, addresses, routes,
//     ipsets and iptables built and removed by plain ip/ipset/iptables-restore
//     commands (no hosts, no probes), for the ratio;
//   - lab (only when asked, --only lab): `tsim hosts up` of the document of
//     the M flows traced, then `tsim hosts down`, as processes: wall of each,
//     peak RSS and peak open descriptors of hosts up, and the kernel's ARP
//     table (shared by every namespace) before and after.
//
// --scope all makes run, floor and lab use every router of the network.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: scale-curves measure|render [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "measure":
		err = measure(context.Background(), os.Args[2:])
	case "render":
		err = render(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q (want measure or render)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "scale-curves:", err)
		os.Exit(1)
	}
}
