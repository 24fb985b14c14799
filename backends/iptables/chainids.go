package iptables

// chainIDs numbers the chains of one table as the payload is built, so that
// the save view groups rules per chain without a lookup of every chain name
// in a table of all of them. Chains made outside the service-port loop (the
// KUBE-* chains every service uses) are searched first; the chains of the
// current service port next (kube-proxy writes a service port's rules
// together). A name met again in another service port gets a second id;
// saveTable sees the duplicate name and groups by name instead.
type chainIDs struct {
	names []string
	// fixed are the chains made outside a service port.
	fixed []chainRef
	// recent are the chains of the current service port (recentMap once
	// there are many).
	recent    []chainRef
	recentMap map[string]int32
	inService bool
	// forkedAt is the number of names of the chainIDs this one was forked
	// from (fork): ids from forkedAt on are this one's own.
	forkedAt int
}

type chainRef struct {
	name string
	id   int32
}

const recentLinear = 16

// id returns the chain's id, numbering it when new.
func (t *chainIDs) id(name string) int32 {
	for i := range t.fixed {
		if t.fixed[i].name == name {
			return t.fixed[i].id
		}
	}
	if t.recentMap != nil {
		if id, ok := t.recentMap[name]; ok {
			return id
		}
	} else {
		for i := range t.recent {
			if t.recent[i].name == name {
				return t.recent[i].id
			}
		}
	}
	id := int32(len(t.names))
	t.names = append(t.names, name)
	switch {
	case !t.inService:
		t.fixed = append(t.fixed, chainRef{name, id})
	case t.recentMap != nil:
		t.recentMap[name] = id
	default:
		t.recent = append(t.recent, chainRef{name, id})
		if len(t.recent) > recentLinear {
			t.recentMap = make(map[string]int32, 2*len(t.recent))
			for _, r := range t.recent {
				t.recentMap[r.name] = r.id
			}
		}
	}
	return id
}

// beginServicePort starts the chains of a new service port.
func (t *chainIDs) beginServicePort() {
	t.recent = t.recent[:0]
	t.recentMap = nil
	t.inService = true
}

// endServicePorts ends the service-port loop.
func (t *chainIDs) endServicePorts() {
	t.recent = t.recent[:0]
	t.recentMap = nil
	t.inService = false
}

// fork is a copy of t that numbers new chains from t's next id on, for a
// payload filled in parallel with t's (payload.join renumbers them).
func (t *chainIDs) fork() chainIDs {
	return chainIDs{
		names:     append([]string(nil), t.names...),
		fixed:     append([]chainRef(nil), t.fixed...),
		inService: t.inService,
		forkedAt:  len(t.names),
	}
}
