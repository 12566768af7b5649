package storageapi

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cairnstore/cairn/engine"
	"github.com/cairnstore/cairn/internal/keyspace"
	"github.com/cairnstore/cairn/server/internal/auth"
	"github.com/cairnstore/cairn/server/internal/publink"
	"github.com/cairnstore/cairn/server/internal/records"
)

// Role is a user's role in an organization.
type Role string

// Roles: admin and manager upload and delete in the organization's area;
// member reads and lists.
const (
	RoleAdmin   Role = "admin"
	RoleManager Role = "manager"
	RoleMember  Role = "member"
)

// canWrite reports whether the role may upload, delete and share.
func (r Role) canWrite() bool { return r == RoleAdmin || r == RoleManager }

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	switch r := Role(strings.ToLower(s)); r {
	case RoleAdmin, RoleManager, RoleMember:
		return r, nil
	}
	return "", fmt.Errorf("%w: role %q is none of admin, manager, member", ErrInvalid, s)
}

// User is an IAM user: an email and a password kept as a bcrypt hash.
type User struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	Hash  string `json:"hash"`
	// Changed is when the password was last set; tokens issued before it
	// are no longer accepted.
	Changed time.Time `json:"changed"`
	Created time.Time `json:"created"`
}

// Org is an organization.
type Org struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
}

// Member is one user's role in one organization.
type Member struct {
	UserID, Email string
	OrgID, Org    string
	Role          Role
}

// The IAM's records. Users and organizations are keyed by random IDs (the
// storage areas are named after them, so a re-created email or name never
// inherits files); emails and names map to IDs; a membership is kept
// twice, under the user and under the organization, in one transaction.
const (
	usersNS      = keyspace.StorageUsers
	emailsNS     = keyspace.StorageEmails
	orgsNS       = keyspace.StorageOrgs
	orgNamesNS   = keyspace.StorageOrgNames
	membersNS    = keyspace.StorageMembers    // tenant user ID, name org ID, meta role
	orgMembersNS = keyspace.StorageOrgMembers // tenant org ID, name user ID, meta role
	keyNS        = keyspace.StorageKey
)

var (
	// ErrExists: a user's email or an organization's name is taken.
	ErrExists = errors.New("storageapi: already exists")
	// ErrNoSuch: no such user, organization or membership.
	ErrNoSuch = errors.New("storageapi: no such user, organization or membership")
	// ErrInvalid: a bad email, password, name or role.
	ErrInvalid = errors.New("storageapi: invalid")
	// ErrHasFiles: deleting a user or organization that still has files,
	// without purging them.
	ErrHasFiles = errors.New("storageapi: it still has files")
)

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 12

var orgNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,63}$`)

// IAM manages users, organizations and memberships kept in the store.
// It is safe for concurrent use.
type IAM struct {
	e     *engine.Engine
	users records.Store[User]
	orgs  records.Store[Org]
}

// NewIAM returns the IAM of the store e.
func NewIAM(e *engine.Engine) *IAM {
	return &IAM{e: e,
		users: records.Store[User]{Engine: e, Namespace: usersNS, What: "user", Missing: ErrNoSuch, Exists: ErrExists},
		orgs:  records.Store[Org]{Engine: e, Namespace: orgsNS, What: "organization", Missing: ErrNoSuch, Exists: ErrExists},
	}
}

func key(ns, tenant, name string) engine.Key {
	return engine.Key{Namespace: ns, Tenant: tenant, Name: name}
}

// normEmail returns the canonical form of an email address: a bare
// address, lowercased.
func normEmail(s string) (string, error) {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || len(s) > 254 {
		return "", fmt.Errorf("%w: %q is not a bare email address", ErrInvalid, s)
	}
	return strings.ToLower(s), nil
}

// AddUser creates a user. An empty password means a new random one,
// which it returns.
func (m *IAM) AddUser(ctx context.Context, email, password string) (User, string, error) {
	email, err := normEmail(email)
	if err != nil {
		return User{}, "", err
	}
	password, hash, err := newPassword(password)
	if err != nil {
		return User{}, "", err
	}
	now := m.e.Now().UTC().Truncate(time.Second)
	u := User{ID: uuid.NewString(), Email: email, Hash: hash, Changed: now, Created: now}
	err = m.e.Update(ctx, func(tx *engine.Tx) error {
		if _, err := tx.Get(key(emailsNS, "", email)); err == nil {
			return fmt.Errorf("%w: user %s", ErrExists, email)
		}
		if _, err := tx.Put(key(emailsNS, "", email), engine.Record{Meta: []byte(u.ID)}, nil); err != nil {
			return err
		}
		_, err := m.users.Put(tx, "", u.ID, u)
		return err
	})
	return u, password, err
}

func newPassword(password string) (string, string, error) {
	if password == "" {
		password = auth.NewSecret()[:24]
	}
	if len(password) < MinPasswordLen || len(password) > 72 {
		return "", "", fmt.Errorf("%w: a password is %d to 72 bytes", ErrInvalid, MinPasswordLen)
	}
	hash, err := auth.HashPassword(password)
	return password, hash, err
}

// SetPassword sets a user's password (empty: a random one, returned).
// Tokens issued before stop working.
func (m *IAM) SetPassword(ctx context.Context, email, password string) (string, error) {
	password, hash, err := newPassword(password)
	if err != nil {
		return "", err
	}
	err = m.e.Update(ctx, func(tx *engine.Tx) error {
		u, err := m.userByEmail(tx.Get, email)
		if err != nil {
			return err
		}
		u.Hash = hash
		// The next second: a token issued in this second is older.
		u.Changed = m.e.Now().UTC().Truncate(time.Second).Add(time.Second)
		_, err = m.users.Put(tx, "", u.ID, u)
		return err
	})
	return password, err
}

func (m *IAM) userByEmail(get func(engine.Key) (engine.Record, error), email string) (User, error) {
	email, err := normEmail(email)
	if err != nil {
		return User{}, fmt.Errorf("%w: user %s", ErrNoSuch, email)
	}
	return byName(get, emailsNS, m.users, email)
}

// byName looks an ID up by a unique name (nameNS: name → ID) and returns
// the object kept under it.
func byName[T any](get func(engine.Key) (engine.Record, error), nameNS string, s records.Store[T], name string) (T, error) {
	var zero T
	rec, err := get(key(nameNS, "", name))
	if errors.Is(err, engine.ErrNotFound) {
		return zero, fmt.Errorf("%w: %s %s", ErrNoSuch, s.What, name)
	}
	if err != nil {
		return zero, err
	}
	v, _, err := s.From(get, "", string(rec.Meta))
	return v, err
}

// UserByEmail returns the user with that email.
func (m *IAM) UserByEmail(email string) (User, error) { return m.userByEmail(m.e.GetRecord, email) }

// User returns the user with that ID.
func (m *IAM) User(id string) (User, error) {
	if id == "" || len(id) > 64 {
		return User{}, ErrNoSuch
	}
	return m.users.Get("", id)
}

// Users returns every user, by ID.
func (m *IAM) Users() ([]User, error) { return m.users.List("") }

// DeleteUser removes a user and their memberships. A user with files in
// their area is refused unless purge, which deletes the files too.
func (m *IAM) DeleteUser(ctx context.Context, email string, purge bool) error {
	u, err := m.UserByEmail(email)
	if err != nil {
		return err
	}
	return m.deleteOwner(ctx, owner{
		what: "user " + u.Email, id: u.ID, area: userArea(u.ID),
		members: membersNS, mirror: orgMembersNS,
		keys: []engine.Key{key(emailsNS, "", u.Email), key(usersNS, "", u.ID)},
	}, purge)
}

// owner is a user or an organization as deleteOwner removes it: its
// memberships (kept under members, mirrored under mirror), its records
// and its area's files.
type owner struct {
	what, id, area  string
	members, mirror string
	keys            []engine.Key
}

func (m *IAM) deleteOwner(ctx context.Context, o owner, purge bool) error {
	if !purge && m.hasFiles(o.area) {
		return fmt.Errorf("%w: %s (delete them, or purge)", ErrHasFiles, o.what)
	}
	// The identity goes first, in one transaction with its memberships:
	// an upload that commits later finds no owner and fails.
	err := m.e.Update(ctx, func(tx *engine.Tx) error {
		for rec, err := range m.e.Records(o.members, o.id, "", "") {
			if err != nil {
				return err
			}
			if err := deleteIfAny(tx, key(o.members, o.id, rec.Key.Name), key(o.mirror, rec.Key.Name, o.id)); err != nil {
				return err
			}
		}
		return deleteIfAny(tx, o.keys...)
	})
	if err != nil {
		return err
	}
	return m.e.DeleteAll(ctx, filesNS, o.area, deleteFile)
}

func deleteIfAny(tx *engine.Tx, keys ...engine.Key) error {
	for _, k := range keys {
		if err := tx.Delete(k); err != nil && !errors.Is(err, engine.ErrNotFound) {
			return err
		}
	}
	return nil
}

func (m *IAM) hasFiles(area string) bool {
	for _, err := range m.e.Records(filesNS, area, "", "") {
		return err == nil
	}
	return false
}

// deleteFile removes a file record and its public link, in tx.
func deleteFile(tx *engine.Tx, rec engine.Record) error {
	if f, err := decodeFile(rec); err == nil && f.PublicLink != "" {
		if err := publink.Delete(tx, f.PublicLink); err != nil {
			return err
		}
	}
	return deleteIfAny(tx, rec.Key)
}

// AddOrg creates an organization.
func (m *IAM) AddOrg(ctx context.Context, name string) (Org, error) {
	if !orgNameRE.MatchString(name) {
		return Org{}, fmt.Errorf("%w: an organization name is 2 to 64 lowercase letters, digits, '.', '_' or '-'", ErrInvalid)
	}
	o := Org{ID: uuid.NewString(), Name: name, Created: m.e.Now().UTC().Truncate(time.Second)}
	err := m.e.Update(ctx, func(tx *engine.Tx) error {
		if _, err := tx.Get(key(orgNamesNS, "", name)); err == nil {
			return fmt.Errorf("%w: organization %s", ErrExists, name)
		}
		if _, err := tx.Put(key(orgNamesNS, "", name), engine.Record{Meta: []byte(o.ID)}, nil); err != nil {
			return err
		}
		_, err := m.orgs.Put(tx, "", o.ID, o)
		return err
	})
	return o, err
}

func (m *IAM) orgByName(get func(engine.Key) (engine.Record, error), name string) (Org, error) {
	if !orgNameRE.MatchString(name) {
		return Org{}, fmt.Errorf("%w: organization %s", ErrNoSuch, name)
	}
	return byName(get, orgNamesNS, m.orgs, name)
}

// OrgByName returns the organization with that name.
func (m *IAM) OrgByName(name string) (Org, error) { return m.orgByName(m.e.GetRecord, name) }

// Orgs returns every organization, by ID.
func (m *IAM) Orgs() ([]Org, error) { return m.orgs.List("") }

// DeleteOrg removes an organization and its memberships; one with files
// is refused unless purge, which deletes them too.
func (m *IAM) DeleteOrg(ctx context.Context, name string, purge bool) error {
	o, err := m.OrgByName(name)
	if err != nil {
		return err
	}
	return m.deleteOwner(ctx, owner{
		what: "organization " + o.Name, id: o.ID, area: orgArea(o.ID),
		members: orgMembersNS, mirror: membersNS,
		keys: []engine.Key{key(orgNamesNS, "", o.Name), key(orgsNS, "", o.ID)},
	}, purge)
}

// SetMember gives a user a role in an organization (adding or changing
// the membership).
func (m *IAM) SetMember(ctx context.Context, org, email string, role Role) error {
	if _, err := ParseRole(string(role)); err != nil {
		return err
	}
	return m.e.Update(ctx, func(tx *engine.Tx) error {
		o, err := m.orgByName(tx.Get, org)
		if err != nil {
			return err
		}
		u, err := m.userByEmail(tx.Get, email)
		if err != nil {
			return err
		}
		if _, err := tx.Put(key(membersNS, u.ID, o.ID), engine.Record{Meta: []byte(role)}, nil); err != nil {
			return err
		}
		_, err = tx.Put(key(orgMembersNS, o.ID, u.ID), engine.Record{Meta: []byte(role)}, nil)
		return err
	})
}

// RemoveMember ends a user's membership of an organization; their
// organization tokens stop working.
func (m *IAM) RemoveMember(ctx context.Context, org, email string) error {
	return m.e.Update(ctx, func(tx *engine.Tx) error {
		o, err := m.orgByName(tx.Get, org)
		if err != nil {
			return err
		}
		u, err := m.userByEmail(tx.Get, email)
		if err != nil {
			return err
		}
		if _, err := tx.Get(key(membersNS, u.ID, o.ID)); err != nil {
			if errors.Is(err, engine.ErrNotFound) {
				return fmt.Errorf("%w: %s is not a member of %s", ErrNoSuch, u.Email, o.Name)
			}
			return err
		}
		return deleteIfAny(tx, key(membersNS, u.ID, o.ID), key(orgMembersNS, o.ID, u.ID))
	})
}

// Role returns a user's role in an organization, or ErrNoSuch.
func (m *IAM) Role(userID, orgID string) (Role, error) {
	if userID == "" || orgID == "" || len(userID) > 64 || len(orgID) > 64 {
		return "", ErrNoSuch
	}
	rec, err := m.e.GetRecord(key(membersNS, userID, orgID))
	if errors.Is(err, engine.ErrNotFound) {
		return "", ErrNoSuch
	}
	if err != nil {
		return "", err
	}
	return ParseRole(string(rec.Meta))
}

// Memberships returns a user's memberships, by organization name.
func (m *IAM) Memberships(userID string) ([]Member, error) {
	var out []Member
	for rec, err := range m.e.Records(membersNS, userID, "", "") {
		if err != nil {
			return nil, err
		}
		o, err := m.orgs.Get("", rec.Key.Name)
		if errors.Is(err, ErrNoSuch) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Member{UserID: userID, OrgID: o.ID, Org: o.Name, Role: Role(rec.Meta)})
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Org, b.Org) })
	return out, nil
}

// Members returns an organization's members, by email.
func (m *IAM) Members(org string) ([]Member, error) {
	o, err := m.OrgByName(org)
	if err != nil {
		return nil, err
	}
	var out []Member
	for rec, err := range m.e.Records(orgMembersNS, o.ID, "", "") {
		if err != nil {
			return nil, err
		}
		u, err := m.User(rec.Key.Name)
		if errors.Is(err, ErrNoSuch) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, Member{UserID: u.ID, Email: u.Email, OrgID: o.ID, Org: o.Name, Role: Role(rec.Meta)})
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Email, b.Email) })
	return out, nil
}

// SealSecrets seals the token signing key if an earlier version kept it
// in clear (and makes it if there is none).
func SealSecrets(ctx context.Context, e *engine.Engine) error {
	_, err := auth.StoreKey(ctx, e, keyNS)
	return err
}
