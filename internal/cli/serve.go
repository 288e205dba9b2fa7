package cli

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"github.com/tsim-dev/tsim/internal/netx"
	"github.com/tsim-dev/tsim/internal/pool"
	"github.com/tsim-dev/tsim/internal/tsimerr"
	"github.com/tsim-dev/tsim/internal/users"
	"github.com/tsim-dev/tsim/serve"
)

func (a *app) serveCommand() *ucli.Command {
	serveDefaults := serve.Defaults() // shown in --help
	return &ucli.Command{
		Name:      "serve",
		Usage:     "web front: log in, submit tests, watch progress, read the PDF (root, like run)",
		UsageText: "tsim serve --listen ADDR --data DIR --users FILE [--tls-cert F --tls-key F] [--workers N] [--host NAME]",
		Description: "Serves the pages and the JSON API under /api/ (docs/api.md). Jobs run the same pipeline\n" +
			"as `tsim run`, each in its own lab; results stay under DATA/jobs/<id>/ for --retention.\n" +
			"Access and audit logs are JSON lines in DATA/access.log and DATA/audit.log.\n" +
			"SIGINT/SIGTERM cancel running jobs (their labs are removed) and stop the server; at start\n" +
			"the labs a crashed server left (owner gone) are removed first.\n" +
			"The pages show per service the router and rule in the way (FILE:LINE), take an uploaded\n" +
			"trace (the predecessor's trace JSON or a tsim document) or a flows file (PASS/FAIL per\n" +
			"line, JUnit XML), and answer only to localhost, the listen address and --host names.",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "listen", Value: "127.0.0.1:8080", Usage: "address to listen on"},
			&ucli.StringFlag{Name: "data", Usage: "directory for jobs and logs (created 0700)", Required: true, TakesFile: true},
			&ucli.StringFlag{Name: "users", Usage: "users file (tsim users add …)", Required: true, TakesFile: true},
			&ucli.StringFlag{Name: "tls-cert", Usage: "TLS certificate (PEM); cookies become Secure", TakesFile: true},
			&ucli.StringFlag{Name: "tls-key", Usage: "TLS private key (PEM)", TakesFile: true},
			&ucli.IntFlag{Name: "workers", Value: 2, Usage: "jobs run at once"},
			&ucli.DurationFlag{Name: "job-timeout", Value: serveDefaults.JobTimeout, Usage: "time limit of one job (queue wait excluded)"},
			&ucli.DurationFlag{Name: "retention", Value: serveDefaults.Retention, Usage: "finished jobs are deleted after this"},
			&ucli.IntFlag{Name: "max-services", Value: serveDefaults.MaxServices, Usage: "services (flows) per job"},
			&ucli.IntFlag{Name: "max-queued", Value: serveDefaults.MaxQueued, Usage: "jobs waiting in the queue"},
			&ucli.IntFlag{Name: "max-per-user", Value: serveDefaults.MaxPerUser, Usage: "unfinished jobs per user"},
			&ucli.DurationFlag{Name: "session-idle", Value: serveDefaults.IdleTimeout, Usage: "session idle timeout"},
			&ucli.DurationFlag{Name: "session-max", Value: serveDefaults.SessionMax, Usage: "absolute session lifetime"},
			&ucli.StringFlag{Name: "pam-service", Usage: "also accept system accounts through this PAM service (needs a -tags pam build)"},
			&ucli.StringFlag{Name: "pam-admin-group", Value: "tsim-admin", Usage: "Unix group whose PAM users get the admin role"},
			&ucli.StringSliceFlag{Name: "host", Usage: "a host name clients use to reach the server (repeatable); the Host header must be one of these, localhost or the listen address"},
			&ucli.StringSliceFlag{Name: "trusted-proxy", Usage: "address or CIDR of a reverse proxy whose X-Forwarded-For is believed (repeatable)"},
			&ucli.DurationFlag{Name: "probe-timeout", Value: serveDefaults.ProbeTimeout, Usage: "wait for one probe's answer (longer than tsim run's: jobs share the CPUs)"},
			&ucli.StringFlag{Name: "paper", Value: "a4", Usage: "PDF paper: a4 or letter"},
			&ucli.StringFlag{Name: "registry", Usage: "lab registry directory (default /run/tsim/labs)", TakesFile: true},
		},
		Action: a.serve,
	}
}

func (a *app) serve(ctx context.Context, cmd *ucli.Command) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	cert, key := cmd.String("tls-cert"), cmd.String("tls-key")
	if (cert == "") != (key == "") {
		return tsimerr.Inputf("--tls-cert and --tls-key go together")
	}
	if cmd.Int("workers") < 1 {
		return tsimerr.Inputf("--workers must be at least 1")
	}
	paper, err := paperName(cmd.String("paper"))
	if err != nil {
		return err
	}
	var proxies []netip.Prefix
	for _, p := range cmd.StringSlice("trusted-proxy") {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			ip, err2 := netip.ParseAddr(p)
			if err2 != nil {
				return tsimerr.Inputf("--trusted-proxy %q: not an address or CIDR", p)
			}
			pfx = netip.PrefixFrom(ip, ip.BitLen())
		}
		proxies = append(proxies, pfx)
	}
	// Jobs build labs: fail now, not at the first job.
	if err := netx.Check(); err != nil {
		return err
	}
	uf, err := users.Open(cmd.String("users"))
	if err != nil {
		return err
	}
	var pam serve.Authenticator
	if svc := cmd.String("pam-service"); svc != "" {
		if pam, err = serve.NewPAM(svc, cmd.String("pam-admin-group")); err != nil {
			return err
		}
	}
	f, err := a.loadFacts(ctx, cmd)
	if err != nil {
		return err
	}
	data := cmd.String("data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return tsimerr.Env(fmt.Errorf("--data: %w", err))
	}
	access, err := openLog(filepath.Join(data, "access.log"))
	if err != nil {
		return err
	}
	defer access.Close()
	audit, err := openLog(filepath.Join(data, "audit.log"))
	if err != nil {
		return err
	}
	defer audit.Close()

	s, err := serve.New(serve.Config{
		DataDir: data, Users: uf, PAM: pam, Facts: f, Pool: pool.New(16, runtime.NumCPU()),
		Workers: int(cmd.Int("workers")), JobTimeout: cmd.Duration("job-timeout"), Retention: cmd.Duration("retention"),
		MaxServices: int(cmd.Int("max-services")), MaxQueued: int(cmd.Int("max-queued")), MaxPerUser: int(cmd.Int("max-per-user")),
		IdleTimeout: cmd.Duration("session-idle"), SessionMax: cmd.Duration("session-max"), TLS: cert != "",
		TrustedProxies: proxies, Hosts: cmd.StringSlice("host"), Paper: paper, ProbeTimeout: cmd.Duration("probe-timeout"), Registry: cmd.String("registry"),
		Log: a.log, AccessLog: access, AuditLog: audit,
	})
	if err != nil {
		return err
	}
	// Labs whose owner died (a crash of an earlier serve) go first.
	if _, err := s.ReapStaleLabs(ctx); err != nil {
		a.log.Warn().Err(err).Msg("removing stale labs")
	}
	return s.ListenAndServe(ctx, cmd.String("listen"), cert, key, func(addr net.Addr) {
		scheme := "http"
		if cert != "" {
			scheme = "https"
		}
		a.log.Info().Str("url", scheme+"://"+addr.String()+"/").Str("facts", f.Source).Msg("serving")
		if !strings.HasPrefix(addr.String(), "127.") && !strings.HasPrefix(addr.String(), "[::1]") && cert == "" {
			a.log.Warn().Msg("serving plain HTTP on a non-loopback address: passwords and cookies travel unencrypted (use --tls-cert or a TLS reverse proxy)")
		}
	})
}

func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, tsimerr.Env(err)
	}
	return f, nil
}
