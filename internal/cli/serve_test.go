package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tsim-dev/tsim/internal/testenv"
)

func TestUsersCommands(t *testing.T) {
	file := filepath.Join(t.TempDir(), "users.json")
	if _, errs, code := run(t, "first password\n", "users", "add", "alice", "--role", "admin", "--password-stdin", "--users", file); code != 0 {
		t.Fatalf("add: exit %d: %s", code, errs)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("users file: %v %v", err, st)
	}
	if _, _, code := run(t, "bob password\n", "users", "add", "bob", "--password-stdin", "--users", file); code != 0 {
		t.Fatal("add bob")
	}
	out, _, code := run(t, "", "--json", "users", "ls", "--users", file)
	var ls struct {
		Users []struct{ Name, Role string }
	}
	if code != 0 || json.Unmarshal([]byte(out), &ls) != nil || len(ls.Users) != 2 || ls.Users[0].Role != "admin" || ls.Users[1].Role != "user" {
		t.Fatalf("ls: %d %s", code, out)
	}
	if strings.Contains(out, "argon2") {
		t.Error("ls shows hashes")
	}
	if _, errs, code := run(t, "second password\n", "users", "passwd", "bob", "--role", "admin", "--password-stdin", "--users", file); code != 0 {
		t.Fatalf("passwd: %s", errs)
	}
	if _, _, code := run(t, "", "users", "del", "alice", "--users", file); code != 0 {
		t.Fatal("del")
	}
	out, _, _ = run(t, "", "--text", "users", "ls", "--users", file)
	if !strings.Contains(out, "bob") || !strings.Contains(out, "admin") || strings.Contains(out, "alice") {
		t.Errorf("ls after passwd/del:\n%s", out)
	}
	for _, c := range []struct {
		stdin string
		args  []string
		msg   string
	}{
		{"pw123456\n", []string{"users", "add", "bob", "--password-stdin", "--users", file}, "exists"},
		{"pw123456\n", []string{"users", "add", "Bad Name", "--password-stdin", "--users", file}, "user name"},
		{"short\n", []string{"users", "add", "carol", "--password-stdin", "--users", file}, "at least 8"},
		{"\n", []string{"users", "add", "carol", "--password-stdin", "--users", file}, "empty password"},
		{"pw123456\n", []string{"users", "add", "carol", "--role", "root", "--password-stdin", "--users", file}, "role"},
		{"", []string{"users", "del", "nobody", "--users", file}, "no such user"},
		{"", []string{"users", "del", "--users", file}, "exactly one user NAME"},
		{"", []string{"users", "ls"}, "users"},
		{"", []string{"serve", "--users", file}, "data"},
		{"", []string{"serve", "--data", t.TempDir(), "--users", file, "--tls-cert", "c.pem"}, "go together"},
		{"", []string{"serve", "--data", t.TempDir(), "--users", file, "--workers", "0"}, "--workers"},
		{"", []string{"serve", "--data", t.TempDir(), "--users", file, "--trusted-proxy", "proxy"}, "trusted-proxy"},
	} {
		_, errs, code := run(t, c.stdin, c.args...)
		if code != 2 || !strings.Contains(errs, c.msg) {
			t.Errorf("%v: exit %d, stderr %q (want 2 and %q)", c.args, code, errs, c.msg)
		}
	}
}

// TestServeCommand runs `tsim serve` in-process on 127.0.0.1:0, logs in
// over HTTP and stops it the way SIGTERM does (context cancelled).
func TestServeCommand(t *testing.T) {
	testenv.NeedRoot(t, "sudo go test ./internal/cli/")
	dir := t.TempDir()
	users := filepath.Join(dir, "users.json")
	if _, errs, code := run(t, "serve password\n", "users", "add", "ann", "--password-stdin", "--users", users); code != 0 {
		t.Fatal(errs)
	}
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"tsim", "--log-level", "info", "serve", "--listen", "127.0.0.1:0", "--data", filepath.Join(dir, "data"), "--users", users},
			Stdio{In: strings.NewReader(""), Out: io.Discard, Err: pw})
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	base := ""
	for sc.Scan() {
		var line struct{ URL string }
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.URL != "" {
			base = strings.TrimSuffix(line.URL, "/")
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("no serving line (got %q)", base)
	}
	res, err := http.Post(base+"/api/login", "application/json", strings.NewReader(`{"username":"ann","password":"serve password"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("login: %d", res.StatusCode)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d after cancel", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	audit, _ := os.ReadFile(filepath.Join(dir, "data", "audit.log"))
	if !strings.Contains(string(audit), `"action":"login_success"`) {
		t.Errorf("audit.log: %s", audit)
	}
	if st, err := os.Stat(filepath.Join(dir, "data", "access.log")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("access.log: %v %v", err, st)
	}
}
