package oracle

// Indexed re-implementations of two pieces of the upstream iptables test fake
// (k8s.io/kubernetes/pkg/util/iptables/testing): ParseIPTablesDump and
// FakeIPTables.RestoreAll. The upstream versions look chains up with a linear scan
// (IPTablesDump.GetChain) once per rule, which is O(rules x chains): about 2 minutes
// for 10,000 services x 10 endpoints. These versions produce the same data
// structures and the same errors using a map index. They operate on the upstream
// fake's own *IPTablesDump, so every other FakeIPTables method keeps working
// unchanged. upstream_test.go checks them against the upstream implementations,
// and -upstream-fake-restore switches back to the upstream code.

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/sets"
	utiliptables "k8s.io/kubernetes/pkg/util/iptables"
	iptablestest "k8s.io/kubernetes/pkg/util/iptables/testing"
)

// Same regexps as pkg/util/iptables/testing/parse.go.
var (
	fastDeclareTableRegex = regexp.MustCompile(`^\*(.*)$`)
	fastDeclareChainRegex = regexp.MustCompile(`^:([^ ]*) - \[([0-9]*):([0-9]*)\]$`)
	fastAddRuleRegex      = regexp.MustCompile(`^-A ([^ ]*) (.*)$`)
	fastDeleteChainRegex  = regexp.MustCompile(`^-X (.*)$`)
)

// fastParseIPTablesDump is iptablestest.ParseIPTablesDump with an index.
func fastParseIPTablesDump(data string) (*iptablestest.IPTablesDump, error) {
	const (
		parseTableDeclaration = iota
		parseChainDeclarations
		parseChains
	)
	dump := &iptablestest.IPTablesDump{}
	state := parseTableDeclaration
	lines := strings.Split(strings.Trim(data, "\n"), "\n")
	var t *iptablestest.Table
	// index: table name -> chain name -> index of the first chain with that name
	index := map[utiliptables.Table]map[utiliptables.Chain]int{}
	// tableIdx: table name -> index of the first table with that name (GetTable semantics)
	tableIdx := map[utiliptables.Table]int{}

	getChain := func(table utiliptables.Table, chain utiliptables.Chain) (*iptablestest.Chain, error) {
		ti, ok := tableIdx[table]
		if !ok {
			return nil, fmt.Errorf("no such table %q", table)
		}
		ci, ok := index[table][chain]
		if !ok {
			return nil, fmt.Errorf("no such chain %q", chain)
		}
		return &dump.Tables[ti].Chains[ci], nil
	}

	for _, line := range lines {
	retry:
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		switch state {
		case parseTableDeclaration:
			match := fastDeclareTableRegex.FindStringSubmatch(line)
			if match == nil {
				return nil, fmt.Errorf("could not parse iptables data (table %d starts with %q not a table name)", len(dump.Tables)+1, line)
			}
			name := utiliptables.Table(match[1])
			dump.Tables = append(dump.Tables, iptablestest.Table{Name: name})
			t = &dump.Tables[len(dump.Tables)-1]
			if _, ok := tableIdx[name]; !ok {
				tableIdx[name] = len(dump.Tables) - 1
				index[name] = map[utiliptables.Chain]int{}
			}
			state = parseChainDeclarations

		case parseChainDeclarations:
			match := fastDeclareChainRegex.FindStringSubmatch(line)
			if match == nil {
				state = parseChains
				goto retry
			}
			chain := utiliptables.Chain(match[1])
			packets, _ := strconv.ParseUint(match[2], 10, 64)
			bytes, _ := strconv.ParseUint(match[3], 10, 64)
			t.Chains = append(t.Chains, iptablestest.Chain{Name: chain, Packets: packets, Bytes: bytes})
			// Only the first table of a given name is visible to GetChain.
			if &dump.Tables[tableIdx[t.Name]] == t {
				if _, ok := index[t.Name][chain]; !ok {
					index[t.Name][chain] = len(t.Chains) - 1
				}
			}

		case parseChains:
			if match := fastAddRuleRegex.FindStringSubmatch(line); match != nil {
				chain := utiliptables.Chain(match[1])
				c, err := getChain(t.Name, chain)
				if err != nil {
					return nil, fmt.Errorf("error parsing rule %q: %v", line, err)
				}
				if c.Deleted {
					return nil, fmt.Errorf("cannot add rules to deleted chain %q", chain)
				}
				rule, err := iptablestest.ParseRule(line, false)
				if err != nil {
					return nil, err
				}
				c.Rules = append(c.Rules, rule)
			} else if match := fastDeleteChainRegex.FindStringSubmatch(line); match != nil {
				chain := utiliptables.Chain(match[1])
				c, err := getChain(t.Name, chain)
				if err != nil {
					return nil, fmt.Errorf("error parsing rule %q: %v", line, err)
				}
				if len(c.Rules) != 0 {
					return nil, fmt.Errorf("cannot delete chain %q after adding rules", chain)
				}
				c.Deleted = true
			} else if line == "COMMIT" {
				state = parseTableDeclaration
			} else {
				return nil, fmt.Errorf("error parsing rule %q", line)
			}
		}
	}
	if state != parseTableDeclaration {
		return nil, fmt.Errorf("could not parse iptables data (no COMMIT line?)")
	}
	return dump, nil
}

// builtinTargets is pkg/util/iptables/testing.builtinTargets.
var fastBuiltinTargets = sets.New("ACCEPT", "DROP", "RETURN", "REJECT", "DNAT", "SNAT", "MASQUERADE", "MARK")

// fastRestoreAll is FakeIPTables.RestoreAll with an index. Payloads that delete
// chains ("-X", which kube-proxy only emits on later syncs) are handed to the
// upstream implementation.
func fastRestoreAll(f *iptablestest.FakeIPTables, data []byte, flush utiliptables.FlushFlag, counters utiliptables.RestoreCountersFlag) error {
	dump, err := fastParseIPTablesDump(string(data))
	if err != nil {
		return err
	}
	for i := range dump.Tables {
		for _, c := range dump.Tables[i].Chains {
			if c.Deleted {
				return f.RestoreAll(data, flush, counters)
			}
		}
	}
	for i := range dump.Tables {
		if err := fastRestoreTable(f, dump, &dump.Tables[i], flush, counters); err != nil {
			return err
		}
	}
	return nil
}

func chainIndex(t *iptablestest.Table) map[utiliptables.Chain]int {
	idx := make(map[utiliptables.Chain]int, len(t.Chains))
	for i := range t.Chains {
		if _, ok := idx[t.Chains[i].Name]; !ok {
			idx[t.Chains[i].Name] = i
		}
	}
	return idx
}

// fastRestoreTable is FakeIPTables.restoreTable for payloads without deleted chains.
func fastRestoreTable(f *iptablestest.FakeIPTables, newDump *iptablestest.IPTablesDump, newTable *iptablestest.Table, flush utiliptables.FlushFlag, counters utiliptables.RestoreCountersFlag) error {
	oldTable, err := f.Dump.GetTable(newTable.Name)
	if err != nil {
		return err
	}
	backupChains := make([]iptablestest.Chain, len(oldTable.Chains))
	copy(backupChains, oldTable.Chains)

	if flush == utiliptables.FlushTables {
		oldTable.Chains = make([]iptablestest.Chain, 0, len(newTable.Chains))
	}
	idx := chainIndex(oldTable)
	for _, newChain := range newTable.Chains {
		if i, ok := idx[newChain.Name]; ok {
			oldChain := &oldTable.Chains[i]
			oldChain.Rules = newChain.Rules
			if counters == utiliptables.RestoreCounters {
				oldChain.Packets = newChain.Packets
				oldChain.Bytes = newChain.Bytes
			}
		} else {
			oldTable.Chains = append(oldTable.Chains, newChain)
			idx[newChain.Name] = len(oldTable.Chains) - 1
		}
	}

	// Now check that all old/new jumps are valid
	newIdx := chainIndex(newTable)
	for _, chain := range oldTable.Chains {
		for _, rule := range chain.Rules {
			if rule.Jump == nil || fastBuiltinTargets.Has(rule.Jump.Value) {
				continue
			}
			if _, ok := idx[utiliptables.Chain(rule.Jump.Value)]; !ok {
				oldTable.Chains = backupChains
				if i, ok := newIdx[utiliptables.Chain(rule.Jump.Value)]; ok {
					return fmt.Errorf("deleted chain %q is referenced by existing rules", newTable.Chains[i].Name)
				}
				return fmt.Errorf("rule %q jumps to a non-existent chain", rule.Raw)
			}
		}
	}
	return nil
}
