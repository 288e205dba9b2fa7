// Package example owns tsim's built-in example network: the raw facts of
// nine routers over three sites (HQ, branch, data centre) plus an Internet
// gateway, embedded in the binary and used when no facts are given.
//
// The files are not written by hand: scripts/example/build.sh builds the
// network in network namespaces and runs the facts collector in every
// router, so the kernel has accepted every line (TestRegenerate proves the
// embedded files equal a fresh build). docs/example-network.md describes the
// topology, the intent of each firewall and the flows with known outcomes.
// This package holds data only; reading it is the facts package's job.
package example

import "embed"

// FS holds facts/<router>_facts.txt, one raw section file per router.
//
//go:embed facts/*_facts.txt
var FS embed.FS
