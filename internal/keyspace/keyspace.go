// Package keyspace names the namespaces of the index's records, all in
// one place, so that no two uses of the store ever share one.
//
// A record's key is (namespace, tenant, name). Each API keeps its records
// and its secondary indexes in namespaces of its own, prefixed with its
// name; the public links are the server's.
package keyspace

// The namespaces.
const (
	// PublicLinks: the opaque public link IDs → the record they serve.
	PublicLinks = "public"
	// SigningKeys: the keys that sign expiring URLs, sealed.
	SigningKeys = "signing.keys"
	// CORS: the per-resource CORS rules; tenant the kind of resource.
	CORS = "cors"
	// Variants: image variants, each referring to its original record
	// (engine/variants.go).
	Variants = "variants"

	CloudStorage      = "cloudstorage"       // media; tenant "<visibility>/<bucket>", name the media path
	CloudStorageUsers = "cloudstorage.users" // users, their secrets sealed

	MediaUpload         = "mediaupload"          // files; tenant the account
	MediaUploadDup      = "mediaupload.dup"      // per account: content hash → file id
	MediaUploadRID      = "mediaupload.rid"      // per account: upload X-Request-Id → file id
	MediaUploadAccounts = "mediaupload.accounts" // accounts

	OceanMedia       = "oceanmedia"        // media
	OceanMediaUnique = "oceanmedia.unique" // (app, context, name, locale, content_type) → medium id
	OceanMediaBy     = "oceanmedia.by"     // media by property value, in updated_at order
	OceanMediaValues = "oceanmedia.values" // the distinct values of each property
	OceanMediaUsers  = "oceanmedia.users"  // API users
	OceanMediaTokens = "oceanmedia.tokens" // issued tokens, by hash

	MediaService        = "mediaservice"         // assets; tenant the tenant
	MediaServiceBy      = "mediaservice.by"      // assets by indexed path value
	MediaServiceCreated = "mediaservice.created" // assets in creation order
	MediaServiceClients = "mediaservice.clients" // OAuth2 clients
	MediaServiceKey     = "mediaservice.key"     // the token signing key, sealed

	StorageFiles      = "storageapi.files"      // files; tenant the area
	StorageUsers      = "storageapi.users"      // IAM users
	StorageEmails     = "storageapi.emails"     // email → user id
	StorageOrgs       = "storageapi.orgs"       // organizations
	StorageOrgNames   = "storageapi.orgnames"   // name → organization id
	StorageMembers    = "storageapi.members"    // tenant user id, name org id, meta role
	StorageOrgMembers = "storageapi.orgmembers" // tenant org id, name user id, meta role
	StorageKey        = "storageapi.key"        // the token signing key, sealed

	// Migrations: one record per change of the index's layout done.
	Migrations = "migrations"
)

// All are every namespace above.
var All = []string{
	PublicLinks, SigningKeys, CORS, Variants,
	CloudStorage, CloudStorageUsers,
	MediaUpload, MediaUploadDup, MediaUploadRID, MediaUploadAccounts,
	OceanMedia, OceanMediaUnique, OceanMediaBy, OceanMediaValues, OceanMediaUsers, OceanMediaTokens,
	MediaService, MediaServiceBy, MediaServiceCreated, MediaServiceClients, MediaServiceKey,
	StorageFiles, StorageUsers, StorageEmails, StorageOrgs, StorageOrgNames, StorageMembers, StorageOrgMembers, StorageKey,
	Migrations,
}
