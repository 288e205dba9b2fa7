package cli

import (
	"os"

	ucli "github.com/urfave/cli/v3"

	"github.com/tsim-dev/tsim/internal/doc"
	"github.com/tsim-dev/tsim/internal/tsimerr"
	"github.com/tsim-dev/tsim/trace"
)

// flowFlags are the flags of one question (-s/-d/-p/--sport), shared by
// trace, run and hosts up.
func flowFlags() []ucli.Flag {
	return []ucli.Flag{
		&ucli.StringFlag{Name: "src", Aliases: []string{"s"}, Usage: "source IPv4 address"},
		&ucli.StringFlag{Name: "dst", Aliases: []string{"d"}, Usage: "destination IPv4 address"},
		&ucli.StringFlag{Name: "services", Aliases: []string{"p"}, Usage: "service SPEC, e.g. 22/tcp,https,53/udp,8000-8010/tcp (default: ICMP echo)"},
		&ucli.IntFlag{Name: "sport", Usage: "source port of tcp/udp flows (default: an ephemeral port)"},
	}
}

// flowsFromFlags builds one flow per service of -s/-d/-p.
func flowsFromFlags(cmd *ucli.Command) ([]*doc.Flow, error) {
	src, err := parseIPv4("src", cmd.String("src"))
	if err != nil {
		return nil, err
	}
	dst, err := parseIPv4("dst", cmd.String("dst"))
	if err != nil {
		return nil, err
	}
	sport := cmd.Int("sport")
	if sport < 0 || sport > 65535 {
		return nil, tsimerr.Inputf("--sport %d: want 0-65535", sport)
	}
	return trace.FlowsFromSpec(src.String(), dst.String(), cmd.String("services"), sport)
}

// flowsFromFile reads --flows FILE (NDJSON or CSV), which excludes -s/-d/-p.
func flowsFromFile(cmd *ucli.Command) ([]*doc.Flow, error) {
	if cmd.IsSet("src") || cmd.IsSet("dst") || cmd.IsSet("services") {
		return nil, tsimerr.Inputf("--flows excludes -s/-d/-p")
	}
	path := cmd.String("flows")
	fh, err := os.Open(path)
	if err != nil {
		return nil, tsimerr.Inputf("--flows: %w", err)
	}
	defer fh.Close()
	flows, err := trace.ReadFlowsFile(fh)
	if err != nil {
		return nil, tsimerr.Inputf("%s: %w", path, err)
	}
	if len(flows) == 0 {
		return nil, tsimerr.Inputf("%s: no flows", path)
	}
	return flows, nil
}
