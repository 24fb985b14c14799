package nft

import (
	"fmt"
	"sort"
	"strings"

	"sigs.k8s.io/knftables"
)

// verb is an nft command verb of the transaction.
type verb int

const (
	verbAdd verb = iota
	verbFlush
	verbDelete
)

// state is the content of the kube-proxy table as knftables' Fake keeps it
// after running a transaction on an empty host: objects by name, rules in
// order, elements by key (the Fake appends them in insertion order; its
// Dump as printed by kube-proxy's oracle sorts them by key, so a map is
// enough here).
type state struct {
	table    *knftables.Table
	chains   map[string]*chainState
	sets     map[string]*setState
	maps     map[string]*setState
	counters map[string]*knftables.Counter
}

type chainState struct {
	chain *knftables.Chain
	rules []*knftables.Rule
}

type setState struct {
	set      *knftables.Set
	mapObj   *knftables.Map
	elements map[string]*knftables.Element
}

func newState() *state {
	return &state{
		chains:   map[string]*chainState{},
		sets:     map[string]*setState{},
		maps:     map[string]*setState{},
		counters: map[string]*knftables.Counter{},
	}
}

func elementKey(e *knftables.Element) string { return strings.Join(e.Key, " . ") }

// apply runs one operation the way knftables.Fake.Run does for the verbs
// kube-proxy uses. Errors mean the transaction would not load (a bug here).
func (s *state) apply(v verb, obj knftables.Object) error {
	if _, ok := obj.(*knftables.Table); !ok && s.table == nil {
		return fmt.Errorf("nft: operation before the table exists")
	}
	switch o := obj.(type) {
	case *knftables.Table:
		switch v {
		case verbAdd:
			if s.table == nil {
				s.table = o
			}
		default:
			return fmt.Errorf("nft: unsupported table operation")
		}
	case *knftables.Chain:
		c := s.chains[o.Name]
		switch v {
		case verbAdd:
			if c == nil {
				s.chains[o.Name] = &chainState{chain: o}
			}
		case verbFlush:
			if c == nil {
				return fmt.Errorf("nft: flush of missing chain %q", o.Name)
			}
			c.rules = nil
		case verbDelete:
			if c == nil {
				return fmt.Errorf("nft: delete of missing chain %q", o.Name)
			}
			delete(s.chains, o.Name)
		}
	case *knftables.Rule:
		c := s.chains[o.Chain]
		if c == nil || v != verbAdd {
			return fmt.Errorf("nft: rule for missing chain %q", o.Chain)
		}
		c.rules = append(c.rules, o)
	case *knftables.Set:
		return s.applyContainer(v, s.sets, o.Name, func() *setState { return &setState{set: o} })
	case *knftables.Map:
		return s.applyContainer(v, s.maps, o.Name, func() *setState { return &setState{mapObj: o} })
	case *knftables.Counter:
		switch v {
		case verbAdd:
			if s.counters[o.Name] == nil {
				s.counters[o.Name] = o
			}
		case verbDelete:
			if s.counters[o.Name] == nil {
				return fmt.Errorf("nft: delete of missing counter %q", o.Name)
			}
			delete(s.counters, o.Name)
		default:
			return fmt.Errorf("nft: unsupported counter operation")
		}
	case *knftables.Element:
		var c *setState
		if o.Set != "" {
			c = s.sets[o.Set]
		} else {
			c = s.maps[o.Map]
		}
		if c == nil {
			return fmt.Errorf("nft: element for missing set/map %q%q", o.Set, o.Map)
		}
		k := elementKey(o)
		switch v {
		case verbAdd:
			c.elements[k] = o
		case verbDelete:
			if c.elements[k] == nil {
				return fmt.Errorf("nft: delete of missing element %q", k)
			}
			delete(c.elements, k)
		default:
			return fmt.Errorf("nft: unsupported element operation")
		}
	default:
		return fmt.Errorf("nft: unsupported object %T", obj)
	}
	return nil
}

func (s *state) applyContainer(v verb, m map[string]*setState, name string, mk func() *setState) error {
	c := m[name]
	switch v {
	case verbAdd:
		if c == nil {
			c = mk()
			c.elements = map[string]*knftables.Element{}
			m[name] = c
		}
	case verbFlush:
		if c == nil {
			return fmt.Errorf("nft: flush of missing set/map %q", name)
		}
		clear(c.elements)
	case verbDelete:
		if c == nil {
			return fmt.Errorf("nft: delete of missing set/map %q", name)
		}
		delete(m, name)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// dump lists the state's operations in the order knftables' Fake.Dump()
// writes them (table; chains, sets, maps and counters by name; then each
// chain's rules in order; then each set's and map's elements), with the
// elements sorted by key, for opsText to write. tx must be an empty
// transaction of the table; it checks the operations as knftables does.
func (s *state) dump(tx *knftables.Transaction) ([]op, error) {
	if s.table == nil {
		return nil, nil
	}
	nops := 0
	var ops []op
	add := func(obj knftables.Object) {
		tx.Add(obj)
		ops = append(ops, op{verbAdd, obj})
		nops++
	}
	add(s.table)
	chains := sortedKeys(s.chains)
	sets := sortedKeys(s.sets)
	maps := sortedKeys(s.maps)
	for _, name := range chains {
		add(s.chains[name].chain)
	}
	for _, name := range sets {
		add(s.sets[name].set)
	}
	for _, name := range maps {
		add(s.maps[name].mapObj)
	}
	for _, name := range sortedKeys(s.counters) {
		add(s.counters[name])
	}
	for _, name := range chains {
		for _, r := range s.chains[name].rules {
			add(r)
		}
	}
	for _, name := range sets {
		c := s.sets[name]
		for _, k := range sortedKeys(c.elements) {
			add(c.elements[k])
		}
	}
	for _, name := range maps {
		c := s.maps[name]
		for _, k := range sortedKeys(c.elements) {
			add(c.elements[k])
		}
	}
	if err := txError(tx, nops); err != nil {
		return nil, err
	}
	return ops, nil
}
