package cli

import (
	"strconv"
	"strings"

	ucli "github.com/urfave/cli/v3"
)

// helpExamplesHeading separates a description from the examples appended
// to it.
const helpExamplesHeading = "\n\nExamples:\n"

// example is one EXAMPLES entry: what it shows, and the command line.
type example struct{ What, Cmd string }

// commandExamples holds the examples of every command, keyed by the command
// path ("tsim", "tsim facts check", …). The man pages and --help both read
// it, and TestExamplesParse checks every tsim invocation in it against the
// command definitions, so an example cannot name a flag that does not exist.
func commandExamples() map[string][]example {
	const (
		src = "10.1.10.5"
		dst = "10.1.50.10"
	)
	return map[string][]example{
		"tsim": {
			{"Simulate two services on the built-in example network", "tsim trace -s " + src + " -d " + dst + " -p https,3306/tcp"},
			{"The whole job as root: simulation, lab, real probes, PDF", "sudo tsim run -s " + src + " -d " + dst + " -p https,3306/tcp -o report.pdf"},
			{"The same as a pipeline of stages", "tsim trace -s " + src + " -d 10.3.20.10 -p 22/tcp | sudo tsim hosts up | sudo tsim reach | sudo tsim hosts down | tsim report -o out/"},
		},
		"tsim facts": {
			{"Routers, interfaces and subnets of a facts directory", "tsim --facts /srv/facts facts show"},
			{"Lint the facts like a compiler", "tsim --facts /srv/facts facts check"},
		},
		"tsim facts show": {
			{"The built-in example network", "tsim facts show"},
			{"Counts as JSON, e.g. the routers with the most iptables rules", "tsim --facts /srv/facts facts show --json | jq -r '.routers | sort_by(-.iptables_rules)[] | \"\\(.name) \\(.iptables_rules)\"'"},
		},
		"tsim facts check": {
			{"Lint a facts directory; exit 1 when any error-level finding exists", "tsim --facts /srv/facts facts check"},
			{"Only the errors", "tsim --facts /srv/facts facts check | grep ': error: '"},
			{"Also the filter rules no traced flow of the whole network reaches", "tsim --facts /srv/facts facts check --unreachable-rules"},
		},
		"tsim facts parse": {
			{"Normalize a directory of raw or JSON facts into one file that loads faster", "tsim --facts /srv/facts facts parse -o facts.json && tsim --facts facts.json facts show"},
		},
		"tsim facts script": {
			{"Collect one router's facts over ssh", "tsim facts script | ssh root@hq-gw sh > facts/hq-gw_facts.txt"},
			{"Every router of a list", "for r in hq-gw hq-core; do tsim facts script | ssh root@$r sh > facts/${r}_facts.txt; done"},
		},
		"tsim trace": {
			{"Which router and rule decides https and 3306/tcp?", "tsim trace -s " + src + " -d " + dst + " -p https,3306/tcp"},
			{"A source on the Internet entering at inet-gw's uplink", "tsim trace -s 198.51.100.5 -d " + dst + " -p https --ingress inet-gw:eth2"},
			{"The disposition of each flow with jq", "tsim trace -s " + src + " -d " + dst + " -p 22/tcp,3306/tcp --json | jq -r '.trace[] | \"\\(.flow) \\(.disposition)\"'"},
			{"ECMP and an asymmetric return: every branch, the kernel's for hash seed 1", "tsim trace -s 10.1.10.5 -d 10.3.100.10 --hash-seed 1 --text"},
			{"The predecessor's JSON for existing scripts (the request alone, one path)", "tsim trace -s " + src + " -d " + dst + " --format legacy-json"},
			{"One row per flow (src, dst, service, disposition, deciding router and rule, FILE:LINE) for a spreadsheet", "tsim trace -s " + src + " -d " + dst + " -p https,3306/tcp --format csv > flows-result.csv"},
			{"Firewall unit tests without root: PASS/FAIL/UNKNOWN per line of a CSV with an expect column, JUnit XML for CI", "tsim trace --flows flows.csv --junit junit.xml"},
			{"The same tests, one document per line for jq (the summary on stderr)", "tsim trace --flows flows.csv --json > traces.ndjson"},
		},
		"tsim sweep": {
			{"Every TCP port from the HQ users to the database subnet, grouped by deciding rule", "tsim sweep -s 10.1.10.0/24 -d 10.3.20.0/24 -p 1-65535/tcp"},
			{"The whole 10/8 on every TCP port as CSV", "tsim sweep -s 10.0.0.0/8 -d 10.0.0.0/8 -p tcp --format csv > space.csv"},
		},
		"tsim diff": {
			{"What a proposed change does to the flows of the firewall unit tests; exit 1 if anything changed", "tsim diff --facts after/ --reference before/ --flows flows.csv -o change.pdf"},
			{"Every flow between two sites on any TCP port whose answer changed", "tsim diff --facts after.json --reference before.json -s 10.1.0.0/16 -d 10.3.0.0/16 -p 1-65535/tcp"},
		},
		"tsim run": {
			{"One question, lab to PDF; exit 1 when anything is blocked", "sudo tsim run -s " + src + " -d " + dst + " -p https,3306/tcp -o report.pdf"},
			{"Nightly firewall unit tests with real probes: PASS/FAIL/UNKNOWN per line of a CSV with an expect column", "sudo tsim run --flows flows.csv -o nightly.pdf --junit junit.xml --timeout 5m --progress=none"},
			{"Progress as NDJSON on stderr (for a wrapper)", "sudo tsim run -s " + src + " -d " + dst + " -p ssh -o r.pdf --progress=json 2>progress.ndjson"},
		},
		"tsim hosts": {
			{"Build a lab for a trace and leave it standing", "tsim trace -s " + src + " -d " + dst + " -p https | sudo tsim hosts up > lab.json"},
			{"List labs, then remove the ones whose owner process is gone", "sudo tsim hosts ls && sudo tsim hosts down --stale"},
		},
		"tsim hosts up": {
			{"Every router of the facts, not only those the flows can touch", "tsim trace -s " + src + " -d " + dst + " -p https | sudo tsim hosts up --scope all > lab.json"},
			{"Look around inside a router of the lab", "sudo ip netns exec \"$(jq -r '.lab.routers[0].netns' lab.json)\" iptables -L -v -n"},
			{"Fail (exit 3) when the kernel refuses any facts line", "tsim --facts /srv/facts trace -s " + src + " -d " + dst + " | sudo tsim --facts /srv/facts hosts up --strict"},
		},
		"tsim hosts down": {
			{"Remove the lab of a document (and pass the document on)", "sudo tsim hosts down < lab.json > done.json"},
			{"Remove a lab by id, or every lab", "sudo tsim hosts down --lab 3f9a2c; sudo tsim hosts down --all"},
		},
		"tsim hosts ls": {
			{"Labs as JSON: id, owner pid, creation time, routers, hosts", "sudo tsim hosts ls --json"},
		},
		"tsim reach": {
			{"Probe a lab; the end-to-end verdict per flow", "sudo tsim reach < lab.json | jq -r '.reach[] | \"\\(.flow) \\(.e2e.verdict)\"'"},
			{"The whole pipeline, with a short probe timeout", "tsim trace -s " + src + " -d " + dst + " -p https | sudo tsim hosts up | sudo tsim reach --timeout 300ms | sudo tsim hosts down"},
		},
		"tsim report": {
			{"The PDF of a finished pipeline", "sudo tsim run -s " + src + " -d " + dst + " -p https -o '' | tsim report -o out/"},
			{"The path diagram of a trace as Graphviz", "tsim trace -s " + src + " -d " + dst + " -p https | tsim report --format dot | dot -Tsvg > path.svg"},
			{"Reproducible PDF bytes", "SOURCE_DATE_EPOCH=1700000000 tsim report -o out/ < done.json"},
		},
		"tsim merge": {
			{"One PDF, with contents and bookmarks, from several documents", "cat hq.json dc.json | tsim merge -o all.pdf"},
			{"The documents of many runs (from any machine) as one report", "cat results/*.json | tsim merge -o nightly.pdf"},
		},
		"tsim serve": {
			{"Create an admin, then serve on localhost", "echo 'a long password' | tsim users add alice --role admin --password-stdin --users /etc/tsim/users.json && sudo tsim serve --listen 127.0.0.1:8080 --data /var/lib/tsim --users /etc/tsim/users.json"},
			{"With TLS (the session cookie becomes Secure)", "sudo tsim serve --listen :8443 --tls-cert cert.pem --tls-key key.pem --data /var/lib/tsim --users /etc/tsim/users.json"},
		},
		"tsim users": {
			{"Add a user and list the users", "echo 'a long password' | tsim users add bob --password-stdin --users users.json && tsim users ls --users users.json"},
		},
		"tsim users add": {
			{"An admin, password from a file", "tsim users add alice --role admin --password-stdin --users /etc/tsim/users.json < pw.txt"},
		},
		"tsim users passwd": {
			{"Set a new password and make the user an admin", "echo 'another password' | tsim users passwd bob --role admin --password-stdin --users users.json"},
		},
		"tsim users del": {
			{"Delete a user", "tsim users del bob --users users.json"},
		},
		"tsim users ls": {
			{"Users as JSON", "TSIM_USERS=users.json tsim users ls --json"},
		},
		"tsim man": {
			{"Write the pages and read one", "tsim man -o /tmp/man && man -l /tmp/man/tsim-trace.1"},
		},
		"tsim version": {
			{"Version, commit and build date as JSON", "tsim version --json"},
		},
		"tsim completions": {
			{"Enable completion in the current bash", "source <(tsim completions bash)"},
			{"Install for every user", "tsim completions bash | sudo tee /etc/bash_completion.d/tsim >/dev/null"},
		},
		"tsim completions bash": {
			{"Load into the current shell", "source <(tsim completions bash)"},
		},
		"tsim completions zsh": {
			{"Load into the current shell (after compinit)", "source <(tsim completions zsh)"},
		},
		"tsim completions fish": {
			{"Install for the current user", "tsim completions fish > ~/.config/fish/completions/tsim.fish"},
		},
	}
}

// examplesText renders examples for --help: the explanation as a shell
// comment, then the command, each line indented.
func examplesText(ex []example, indent string) string {
	var b strings.Builder
	for i, e := range ex {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(indent + "# " + e.What + "\n")
		b.WriteString(indent + e.Cmd + "\n")
	}
	return b.String()
}

// addHelpExamples appends each command's examples to its --help. Leaf
// commands (and the root) get an EXAMPLES section after the options through
// their own help template; commands with subcommands are always printed with
// urfave/cli's fixed subcommand template, so there the examples close the
// description. With named non-nil, only the commands whose name is in it
// get them (the top always): help is only ever printed for a command named
// on the command line, and formatting every command's examples cost each
// tsim invocation 0.2 ms.
func addHelpExamples(top *ucli.Command, topPath string, named map[string]bool) {
	all := commandExamples()
	var walk func(c *ucli.Command, path string)
	walk = func(c *ucli.Command, path string) {
		for _, sub := range c.Commands {
			if named == nil || named[sub.Name] {
				walk(sub, path+" "+sub.Name)
			}
		}
		ex := all[path]
		if len(ex) == 0 {
			return
		}
		// A string constant inside the template, so nothing in an example
		// is read as template syntax.
		section := "\nEXAMPLES:\n{{" + strconv.Quote(examplesText(ex, "   ")) + "}}"
		switch {
		case path == "tsim":
			c.CustomRootCommandHelpTemplate = ucli.RootCommandHelpTemplate + section
		case len(c.Commands) == 0:
			c.CustomHelpTemplate = ucli.CommandHelpTemplate + section
		default:
			c.Description = strings.TrimRight(c.Description, "\n") + helpExamplesHeading + examplesText(ex, "  ")
		}
	}
	walk(top, topPath)
}
