package facts

import (
	_ "embed" // the collector script is embedded
)

//go:embed collector.sh
var collectorScript string

// CollectorScript returns the POSIX-sh facts collector that `tsim facts
// script` prints. Run on a router as root, it writes that router's facts in
// the raw section format this package reads (current section names, with an
// rt_tables section and one routing_table_<id> section per table).
func CollectorScript() string {
	return collectorScript
}
