package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	ucli "github.com/urfave/cli/v3"

	"github.com/tsim-dev/tsim/internal/tsimerr"
	"github.com/tsim-dev/tsim/internal/users"
)

func (a *app) usersCommand() *ucli.Command {
	file := &ucli.StringFlag{Name: "users", Usage: "users file", Required: true, TakesFile: true, Sources: ucli.EnvVars("TSIM_USERS")}
	pwStdin := &ucli.BoolFlag{Name: "password-stdin", Usage: "read the password from the first line of stdin (needed when stdin is a terminal)"}
	return &ucli.Command{
		Name:  "users",
		Usage: "manage the local users of tsim serve (argon2id hashes, file mode 0600)",
		Description: "The file is replaced atomically on every change; a running tsim serve notices changes\n" +
			"at the next login. Passwords are read from stdin, never from the command line.",
		Commands: []*ucli.Command{
			{
				Name:      "add",
				Usage:     "add a user",
				UsageText: "echo PASSWORD | tsim users add NAME --role user|admin --password-stdin --users FILE",
				Flags: []ucli.Flag{file, pwStdin,
					&ucli.StringFlag{Name: "role", Value: users.RoleUser, Usage: "user or admin"}},
				Action: func(ctx context.Context, cmd *ucli.Command) error {
					name, f, err := a.userArgs(cmd)
					if err != nil {
						return err
					}
					pw, err := a.readPassword(cmd)
					if err != nil {
						return err
					}
					if err := f.Add(name, cmd.String("role"), pw); err != nil {
						return err
					}
					a.log.Info().Str("user", name).Str("role", cmd.String("role")).Msg("user added")
					return nil
				},
			},
			{
				Name:      "passwd",
				Usage:     "set a user's password (and with --role, the role)",
				UsageText: "echo PASSWORD | tsim users passwd NAME --password-stdin --users FILE",
				Flags: []ucli.Flag{file, pwStdin,
					&ucli.StringFlag{Name: "role", Usage: "also change the role: user or admin"}},
				Action: func(ctx context.Context, cmd *ucli.Command) error {
					name, f, err := a.userArgs(cmd)
					if err != nil {
						return err
					}
					pw, err := a.readPassword(cmd)
					if err != nil {
						return err
					}
					if err := f.SetPassword(name, pw); err != nil {
						return err
					}
					if r := cmd.String("role"); r != "" {
						return f.SetRole(name, r)
					}
					return nil
				},
			},
			{
				Name:      "del",
				Usage:     "delete a user",
				UsageText: "tsim users del NAME --users FILE",
				Flags:     []ucli.Flag{file},
				Action: func(ctx context.Context, cmd *ucli.Command) error {
					name, f, err := a.userArgs(cmd)
					if err != nil {
						return err
					}
					return f.Delete(name)
				},
			},
			{
				Name:      "ls",
				Usage:     "list users (name, role, created)",
				UsageText: "tsim users ls --users FILE [--json]",
				Flags:     []ucli.Flag{file},
				Action: func(ctx context.Context, cmd *ucli.Command) error {
					if err := noArgs(cmd); err != nil {
						return err
					}
					f, err := users.Open(cmd.String("users"))
					if err != nil {
						return err
					}
					list, err := f.List()
					if err != nil {
						return err
					}
					if !a.textOut(cmd) {
						type row struct {
							Name    string `json:"name"`
							Role    string `json:"role"`
							Created string `json:"created"`
						}
						out := struct {
							Users []row `json:"users"`
						}{Users: []row{}}
						for _, u := range list {
							out.Users = append(out.Users, row{u.Name, u.Role, u.Created.UTC().Format("2006-01-02T15:04:05Z")})
						}
						enc := json.NewEncoder(a.io.Out)
						enc.SetIndent("", "  ")
						return enc.Encode(out)
					}
					tw := tabwriter.NewWriter(a.io.Out, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "NAME\tROLE\tCREATED")
					for _, u := range list {
						fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Name, u.Role, u.Created.UTC().Format("2006-01-02 15:04"))
					}
					return tw.Flush()
				},
			},
		},
	}
}

// userArgs takes the one NAME argument and opens the users file.
func (a *app) userArgs(cmd *ucli.Command) (string, *users.File, error) {
	if cmd.Args().Len() != 1 {
		return "", nil, tsimerr.Inputf("%s: want exactly one user NAME", strings.TrimPrefix(commandPath(cmd), cmd.Root().Name+" "))
	}
	name := cmd.Args().First()
	if err := users.ValidName(name); err != nil {
		return "", nil, err
	}
	f, err := users.Open(cmd.String("users"))
	if err != nil {
		return "", nil, err
	}
	return name, f, nil
}

// readPassword reads the first line of stdin. Without --password-stdin a
// terminal is refused: typing would echo the password.
func (a *app) readPassword(cmd *ucli.Command) (string, error) {
	if !cmd.Bool("password-stdin") && isTerminal(a.io.In) {
		return "", tsimerr.Inputf("%s: give the password on stdin with --password-stdin (it would echo on the terminal)", strings.TrimPrefix(commandPath(cmd), cmd.Root().Name+" "))
	}
	line, err := bufio.NewReader(io.LimitReader(a.io.In, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", tsimerr.Inputf("reading the password: %v", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", tsimerr.Inputf("%s: empty password on stdin", strings.TrimPrefix(commandPath(cmd), cmd.Root().Name+" "))
	}
	return pw, nil
}
