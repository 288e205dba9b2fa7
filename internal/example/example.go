// Package example owns the built-in example network embedded in the binary.
//
// TEMPORARY placeholder written by the facts-reader helper so that
// facts.Load("") has something to read: it embeds three corpus files. The
// example helper replaces this file and facts/ with the real example.
package example

import "embed"

// FS holds facts/<router>_facts.txt.
//
//go:embed facts
var FS embed.FS
