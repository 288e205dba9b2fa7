package cli

import (
	"bytes"
	"fmt"
	"sort"
	"strings"

	ucli "github.com/urfave/cli/v3"
)

// exitMeanings says, per command path, what exit codes 0 and 1 mean for
// that command; codes 2, 3 and 130 mean the same everywhere. A command not
// listed never answers negatively: 0 means it did its work.
func exitMeanings(key string) (ok, negative string) {
	switch key {
	case "tsim":
		return "the command worked and the answer is positive (delivered, all reachable, no lint error)",
			"the command worked and the answer is negative (denied, no route, unreachable, lint errors)"
	case "tsim facts check":
		return "no error-level finding (warnings allowed)", "at least one error-level finding"
	case "tsim trace":
		return "every flow is DELIVERED or EXITS_NETWORK (with --flows: every line met its expect column, none is UNKNOWN)",
			"some flow is DENIED, NO_ROUTE, NULL_ROUTED, LOOP, UNKNOWN_SOURCE or UNKNOWN (with --flows: an expectation failed or a line is UNKNOWN). " +
				"With --format legacy-json the predecessor's codes apply instead: 0 path found, 1 no route " +
				"but some router reaches the destination, 2 no route (or unknown source), 10 invalid input"
	case "tsim sweep":
		return "every flow of the space is DELIVERED or EXITS_NETWORK", "some flow of the space is not"
	case "tsim diff":
		return "no flow's answer changed", "some flow's answer changed (listed)"
	case "tsim run":
		return "every flow is REACHABLE (with --flows: every line met its expect column, none is UNKNOWN)",
			"some flow is not REACHABLE, or an expectation failed, or a line is UNKNOWN"
	case "tsim reach":
		return "every flow is REACHABLE end to end", "some flow is UNREACHABLE or UNKNOWN"
	case "tsim hosts up":
		return "the lab is built (refused facts lines are listed in .lab.routers[].refused)", ""
	}
	return "the command did its work", ""
}

func writeExitStatus(b *bytes.Buffer, key string) {
	ok, neg := exitMeanings(key)
	b.WriteString(".SH EXIT STATUS\n")
	item := func(code, text string) {
		fmt.Fprintf(b, ".TP\n.B %s\n%s\n", code, roffEscape(text))
	}
	item("0", ok)
	if neg != "" {
		item("1", neg)
	}
	item("2", "usage or input error, one line on stderr and nothing on stdout: unknown flag or command (with a did-you-mean), a flag without its value, a missing required flag, bad document (not JSON, wrong schema, a section missing), bad facts or flows file (with file:line)")
	env := "environment error, and any error not classified: no CAP_NET_ADMIN and CAP_SYS_ADMIN for a lab, a missing kernel feature or tool, a lab conflict, a file that cannot be written"
	switch key {
	case "tsim hosts up":
		env += "; with --strict also when the kernel refused a facts line (the lab is removed first)"
	case "tsim run":
		env += "; --timeout expired"
	}
	item("3", env)
	item("130", "interrupted (SIGINT, SIGTERM); everything the command created was removed (commands that create nothing, like trace, end by the signal itself: a shell shows 130 or 143)")
}

// commandEnv lists environment variables a command reads that are not
// already shown with a flag.
func commandEnv(key string) map[string]string {
	env := map[string]string{}
	switch key {
	case "tsim", "tsim report", "tsim merge", "tsim run", "tsim serve":
		env["SOURCE_DATE_EPOCH"] = "Unix time used as the creation date of PDF reports, so the same document gives the same bytes."
	}
	switch key {
	case "tsim", "tsim trace", "tsim run", "tsim reach", "tsim hosts up", "tsim facts show", "tsim facts check":
		env["NO_COLOR"] = "When set and not empty, --color=auto prints no colour (no-color.org)."
		env["TERM"] = "dumb: --color=auto prints no colour."
	}
	return env
}

func writeEnvironment(b *bytes.Buffer, key string, c, root *ucli.Command) {
	env := commandEnv(key)
	// Every flag (own or global) with an environment source.
	for _, list := range [][]ucli.Flag{c.Flags, root.Flags} {
		for _, f := range list {
			df, ok := f.(ucli.DocGenerationFlag)
			if !ok {
				continue
			}
			for _, e := range df.GetEnvVars() {
				env[e] = "Default for --" + f.Names()[0] + ": " + df.GetUsage() + "."
			}
		}
	}
	b.WriteString(".SH ENVIRONMENT\n")
	names := make([]string, 0, len(env))
	for n := range env {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(b, ".TP\n.B %s\n%s\n", roffEscape(n), roffEscape(env[n]))
	}
	b.WriteString(".PP\nLogs and progress go to stderr; stdout carries only data (JSON into a pipe, a rendering on a terminal).\n")
}

// commandFiles lists the files a command reads or writes, as (path, what).
func commandFiles(key string) [][2]string {
	factsFiles := [][2]string{
		{"DIR/<router>_facts.txt", "raw facts of one router, as written by the collector (tsim facts script); the older section names load too"},
		{"DIR/<router>.json", "the predecessor's JSON facts of one router (with metadata)"},
		{"FILE.json", "normalized facts of every router, as written by tsim facts parse"},
	}
	labFiles := [][2]string{
		{"/run/tsim/labs/<id>.json", "the lab registry: one record per lab (owner process, namespaces and links it created), used by hosts ls and hosts down --stale"},
		{"/run/netns/tsim-<id>-<router>", "the network namespaces of a lab (ip netns exec works on them)"},
	}
	flowsFiles := [][2]string{
		{"FLOWS.csv", "--flows: CSV with a header row src,dst,spec,expect (optional ingress, sport, name, comment), quoted fields, empty cells, CRLF; or NDJSON"},
		{"JUNIT.xml", "--junit: JUnit XML, one testcase per flows-file line (written atomically)"},
	}
	switch {
	case key == "tsim":
		return append(append([][2]string{}, factsFiles...), labFiles...)
	case strings.HasPrefix(key, "tsim facts"):
		if key == "tsim facts script" {
			return [][2]string{{"<hostname>_facts.txt", "where the collector's output is usually saved; tsim reads a directory of them"}}
		}
		return factsFiles
	case key == "tsim trace":
		return append(append([][2]string{}, factsFiles...), flowsFiles...)
	case key == "tsim run":
		return append(append(append(append([][2]string{}, factsFiles...), labFiles...), flowsFiles...), [2]string{"report.pdf", "the PDF report of every document (-o)"})
	case strings.HasPrefix(key, "tsim hosts"), key == "tsim reach":
		return append(append([][2]string{}, labFiles...), factsFiles[0])
	case key == "tsim report":
		return [][2]string{{"DIR/*.pdf", "the report, named after the document's flows; its path is recorded in .report.pdf"}}
	case key == "tsim merge":
		return [][2]string{{"FILE", "the PDF (-o), rendered from the documents; no report PDF is read"}}
	case key == "tsim serve":
		return append([][2]string{
			{"DATA/", "--data: jobs (documents, PDFs, logs), created mode 0700"},
			{"USERS", "--users: the users file (tsim users), re-read when it changes"},
		}, labFiles...)
	case strings.HasPrefix(key, "tsim users"):
		return [][2]string{{"USERS", "the users file (--users or TSIM_USERS): JSON, one entry per user with role and argon2id hash; mode 0600, replaced atomically"}}
	case key == "tsim man":
		return [][2]string{{"DIR/tsim.1, DIR/tsim-*.1", "the pages written"}}
	case strings.HasPrefix(key, "tsim completions"):
		return [][2]string{
			{"/etc/bash_completion.d/tsim", "a usual place for the bash script"},
			{"~/.config/fish/completions/tsim.fish", "where fish looks for it"},
		}
	}
	return nil
}

func writeFiles(b *bytes.Buffer, key string) {
	files := commandFiles(key)
	if len(files) == 0 {
		return
	}
	b.WriteString(".SH FILES\n")
	for _, f := range files {
		fmt.Fprintf(b, ".TP\n.I %s\n%s\n", roffEscape(f[0]), roffEscape(f[1]))
	}
}

func writeExamples(b *bytes.Buffer, ex []example) {
	if len(ex) == 0 {
		return
	}
	b.WriteString(".SH EXAMPLES\n")
	for _, e := range ex {
		fmt.Fprintf(b, ".PP\n%s\n.PP\n.RS 4\n.nf\n%s\n.fi\n.RE\n", roffEscape(e.What), roffEscape(e.Cmd))
	}
}
