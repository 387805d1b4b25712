//! The catalogue the lint checks policies against: condition keys (with their AWS types and
//! whether s3warden ever fills them) and the names of S3 actions.
//!
//! Types and multivalued-ness follow the Service Authorization Reference and the IAM User
//! Guide's global condition keys page. "Filled" means the proxy puts the key in the request
//! context when it applies (S3-SEMANTICS 1.6/1.7); AWS keys that s3warden never fills (VPC,
//! organizations, service principals, resource tags) are known, so that the lint can say the
//! condition always sees them missing rather than calling them unknown. AWS accepts unknown
//! keys, and so does the parser; only the lint reports them.

/// The type of a condition key, as AWS documents it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyType {
    String,
    Numeric,
    Date,
    /// `aws:EpochTime`: Date or Numeric operators.
    DateOrNumeric,
    Bool,
    Ip,
    Arn,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyInfo {
    /// Canonical spelling; a trailing `/` marks a prefix followed by a tag key.
    pub name: &'static str,
    pub ty: KeyType,
    /// Multivalued (`ArrayOf...`): wants `ForAllValues:`/`ForAnyValue:`.
    pub multi: bool,
    /// s3warden puts it in the context of the requests it applies to.
    pub filled: bool,
}

const fn key(name: &'static str, ty: KeyType) -> KeyInfo {
    KeyInfo {
        name,
        ty,
        multi: false,
        filled: true,
    }
}

const fn multi(name: &'static str) -> KeyInfo {
    KeyInfo {
        name,
        ty: KeyType::String,
        multi: true,
        filled: true,
    }
}

const fn unfilled(info: KeyInfo) -> KeyInfo {
    KeyInfo {
        filled: false,
        ..info
    }
}

use KeyType::{Arn, Bool, Date, DateOrNumeric, Ip, Numeric, String as Str};

const KEYS: &[KeyInfo] = &[
    // Global keys s3warden fills.
    key("aws:SourceIp", Ip),
    key("aws:SecureTransport", Bool),
    key("aws:CurrentTime", Date),
    key("aws:EpochTime", DateOrNumeric),
    key("aws:username", Str),
    key("aws:userid", Str),
    key("aws:PrincipalType", Str),
    key("aws:PrincipalArn", Arn),
    key("aws:PrincipalAccount", Str),
    key("aws:TokenIssueTime", Date),
    key("aws:MultiFactorAuthPresent", Bool),
    key("aws:UserAgent", Str),
    key("aws:Referer", Str),
    key("aws:RequestedRegion", Str),
    key("aws:RequestTag/", Str),
    multi("aws:TagKeys"),
    key("aws:PrincipalTag/", Str),
    // Role sessions from AssumeRoleWithWebIdentity, and their trust policy.
    key("aws:FederatedProvider", Str),
    // Global keys that exist at AWS but never occur in s3warden requests.
    unfilled(key("aws:MultiFactorAuthAge", Numeric)),
    unfilled(key("aws:SourceVpc", Str)),
    unfilled(key("aws:SourceVpce", Str)),
    unfilled(key("aws:VpcSourceIp", Ip)),
    unfilled(key("aws:SourceArn", Arn)),
    unfilled(key("aws:SourceAccount", Str)),
    unfilled(key("aws:SourceOrgID", Str)),
    unfilled(multi("aws:SourceOrgPaths")),
    unfilled(key("aws:PrincipalOrgID", Str)),
    unfilled(multi("aws:PrincipalOrgPaths")),
    unfilled(key("aws:PrincipalIsAWSService", Bool)),
    unfilled(key("aws:PrincipalServiceName", Str)),
    unfilled(multi("aws:PrincipalServiceNamesList")),
    unfilled(key("aws:ViaAWSService", Bool)),
    unfilled(multi("aws:CalledVia")),
    unfilled(key("aws:CalledViaFirst", Str)),
    unfilled(key("aws:CalledViaLast", Str)),
    unfilled(key("aws:SourceIdentity", Str)),
    unfilled(key("aws:ResourceTag/", Str)),
    unfilled(key("aws:ResourceAccount", Str)),
    unfilled(key("aws:ResourceOrgID", Str)),
    unfilled(multi("aws:ResourceOrgPaths")),
    unfilled(key("aws:Ec2InstanceSourceVpc", Str)),
    unfilled(key("aws:Ec2InstanceSourcePrivateIPv4", Ip)),
    // S3 keys s3warden fills.
    key("s3:prefix", Str),
    key("s3:delimiter", Str),
    key("s3:max-keys", Numeric),
    key("s3:x-amz-acl", Str),
    key("s3:x-amz-grant-full-control", Str),
    key("s3:x-amz-grant-read", Str),
    key("s3:x-amz-grant-read-acp", Str),
    key("s3:x-amz-grant-write", Str),
    key("s3:x-amz-grant-write-acp", Str),
    key("s3:x-amz-copy-source", Str),
    key("s3:x-amz-metadata-directive", Str),
    key("s3:x-amz-server-side-encryption", Str),
    key("s3:x-amz-server-side-encryption-aws-kms-key-id", Arn),
    key("s3:x-amz-server-side-encryption-customer-algorithm", Str),
    key("s3:x-amz-storage-class", Str),
    key("s3:x-amz-website-redirect-location", Str),
    key("s3:x-amz-content-sha256", Str),
    key("s3:x-amz-object-ownership", Str),
    key("s3:signatureversion", Str),
    key("s3:authType", Str),
    key("s3:signatureAge", Numeric),
    key("s3:TlsVersion", Numeric),
    key("s3:VersionId", Str),
    key("s3:RequestObjectTag/", Str),
    multi("s3:RequestObjectTagKeys"),
    // Stored object tags would need an upstream lookup per request.
    key("s3:ExistingObjectTag/", Str),
    key("s3:object-lock-mode", Str),
    key("s3:object-lock-retain-until-date", Date),
    key("s3:object-lock-remaining-retention-days", Numeric),
    key("s3:object-lock-legal-hold", Str),
    // Read from the CreateBucket body, which s3warden streams unread.
    unfilled(key("s3:locationconstraint", Str)),
    key("s3:ResourceAccount", Str),
    key("s3:if-match", Str),
    key("s3:if-none-match", Str),
    key("s3:ObjectCreationOperation", Bool),
    // S3 keys of features s3warden does not have (access points, access grants, bucket tags).
    unfilled(key("s3:BucketTag/", Str)),
    unfilled(key("s3:DataAccessPointArn", Str)),
    unfilled(key("s3:DataAccessPointAccount", Str)),
    unfilled(key("s3:AccessPointNetworkOrigin", Str)),
    unfilled(key("s3:AccessGrantsInstanceArn", Str)),
    unfilled(key("s3:x-amz-bucket-namespace", Str)),
    // STS and IAM keys of the STS and IAM APIs.
    key("sts:ExternalId", Str),
    key("sts:RoleSessionName", Str),
    unfilled(key("sts:SourceIdentity", Str)),
    multi("sts:TransitiveTagKeys"),
    unfilled(key("sts:DurationSeconds", Numeric)),
    key("iam:PolicyARN", Arn),
    key("iam:PermissionsBoundary", Arn),
    unfilled(key("iam:PassedToService", Str)),
    unfilled(key("iam:AWSServiceName", Str)),
    key("iam:ResourceTag/", Str),
];

/// The catalogue entry for a condition key (any case), if known.
pub(crate) fn lookup(key: &str) -> Option<&'static KeyInfo> {
    KEYS.iter().find(|info| {
        if info.name.ends_with('/') {
            key.len() > info.name.len()
                && key
                    .get(..info.name.len())
                    .is_some_and(|head| head.eq_ignore_ascii_case(info.name))
        } else {
            key.eq_ignore_ascii_case(info.name)
        }
    })
}

/// S3's actions (Service Authorization Reference), for spotting misspelt action names.
pub(crate) const S3_ACTIONS: &[&str] = &[
    "AbortMultipartUpload",
    "AssociateAccessGrantsIdentityCenter",
    "BypassGovernanceRetention",
    "CreateAccessGrant",
    "CreateAccessGrantsInstance",
    "CreateAccessGrantsLocation",
    "CreateAccessPoint",
    "CreateAccessPointForObjectLambda",
    "CreateBucket",
    "CreateBucketMetadataTableConfiguration",
    "CreateJob",
    "CreateMultiRegionAccessPoint",
    "CreateStorageLensGroup",
    "DeleteAccessGrant",
    "DeleteAccessGrantsInstance",
    "DeleteAccessGrantsInstanceResourcePolicy",
    "DeleteAccessGrantsLocation",
    "DeleteAccessPoint",
    "DeleteAccessPointForObjectLambda",
    "DeleteAccessPointPolicy",
    "DeleteAccessPointPolicyForObjectLambda",
    "DeleteBucket",
    "DeleteBucketMetadataTableConfiguration",
    "DeleteBucketOwnershipControls",
    "DeleteBucketPolicy",
    "DeleteBucketWebsite",
    "DeleteJobTagging",
    "DeleteMultiRegionAccessPoint",
    "DeleteObject",
    "DeleteObjectTagging",
    "DeleteObjectVersion",
    "DeleteObjectVersionTagging",
    "DeleteStorageLensConfiguration",
    "DeleteStorageLensConfigurationTagging",
    "DeleteStorageLensGroup",
    "DescribeJob",
    "DescribeMultiRegionAccessPointOperation",
    "DissociateAccessGrantsIdentityCenter",
    "GetAccelerateConfiguration",
    "GetAccessGrant",
    "GetAccessGrantsInstance",
    "GetAccessGrantsInstanceForPrefix",
    "GetAccessGrantsInstanceResourcePolicy",
    "GetAccessGrantsLocation",
    "GetAccessPoint",
    "GetAccessPointConfigurationForObjectLambda",
    "GetAccessPointForObjectLambda",
    "GetAccessPointPolicy",
    "GetAccessPointPolicyForObjectLambda",
    "GetAccessPointPolicyStatus",
    "GetAccessPointPolicyStatusForObjectLambda",
    "GetAccountPublicAccessBlock",
    "GetAnalyticsConfiguration",
    "GetBucketAcl",
    "GetBucketCORS",
    "GetBucketLocation",
    "GetBucketLogging",
    "GetBucketMetadataTableConfiguration",
    "GetBucketNotification",
    "GetBucketObjectLockConfiguration",
    "GetBucketOwnershipControls",
    "GetBucketPolicy",
    "GetBucketPolicyStatus",
    "GetBucketPublicAccessBlock",
    "GetBucketRequestPayment",
    "GetBucketTagging",
    "GetBucketVersioning",
    "GetBucketWebsite",
    "GetDataAccess",
    "GetEncryptionConfiguration",
    "GetIntelligentTieringConfiguration",
    "GetInventoryConfiguration",
    "GetJobTagging",
    "GetLifecycleConfiguration",
    "GetMetricsConfiguration",
    "GetMultiRegionAccessPoint",
    "GetMultiRegionAccessPointPolicy",
    "GetMultiRegionAccessPointPolicyStatus",
    "GetMultiRegionAccessPointRoutes",
    "GetObject",
    "GetObjectAcl",
    "GetObjectAttributes",
    "GetObjectLegalHold",
    "GetObjectRetention",
    "GetObjectTagging",
    "GetObjectTorrent",
    "GetObjectVersion",
    "GetObjectVersionAcl",
    "GetObjectVersionAttributes",
    "GetObjectVersionForReplication",
    "GetObjectVersionTagging",
    "GetObjectVersionTorrent",
    "GetReplicationConfiguration",
    "GetStorageLensConfiguration",
    "GetStorageLensConfigurationTagging",
    "GetStorageLensDashboard",
    "GetStorageLensGroup",
    "InitiateReplication",
    "ListAccessGrants",
    "ListAccessGrantsInstances",
    "ListAccessGrantsLocations",
    "ListAccessPoints",
    "ListAccessPointsForObjectLambda",
    "ListAllMyBuckets",
    "ListBucket",
    "ListBucketMultipartUploads",
    "ListBucketVersions",
    "ListCallerAccessGrants",
    "ListJobs",
    "ListMultiRegionAccessPoints",
    "ListMultipartUploadParts",
    "ListStorageLensConfigurations",
    "ListStorageLensGroups",
    "ListTagsForResource",
    "ObjectOwnerOverrideToBucketOwner",
    "PauseReplication",
    "PutAccelerateConfiguration",
    "PutAccessGrantsInstanceResourcePolicy",
    "PutAccessPointConfigurationForObjectLambda",
    "PutAccessPointPolicy",
    "PutAccessPointPolicyForObjectLambda",
    "PutAccessPointPublicAccessBlock",
    "PutAccountPublicAccessBlock",
    "PutAnalyticsConfiguration",
    "PutBucketAcl",
    "PutBucketCORS",
    "PutBucketLogging",
    "PutBucketNotification",
    "PutBucketObjectLockConfiguration",
    "PutBucketOwnershipControls",
    "PutBucketPolicy",
    "PutBucketPublicAccessBlock",
    "PutBucketRequestPayment",
    "PutBucketTagging",
    "PutBucketVersioning",
    "PutBucketWebsite",
    "PutEncryptionConfiguration",
    "PutIntelligentTieringConfiguration",
    "PutInventoryConfiguration",
    "PutJobTagging",
    "PutLifecycleConfiguration",
    "PutMetricsConfiguration",
    "PutMultiRegionAccessPointPolicy",
    "PutObject",
    "PutObjectAcl",
    "PutObjectLegalHold",
    "PutObjectRetention",
    "PutObjectTagging",
    "PutObjectVersionAcl",
    "PutObjectVersionTagging",
    "PutReplicationConfiguration",
    "PutStorageLensConfiguration",
    "PutStorageLensConfigurationTagging",
    "ReplicateDelete",
    "ReplicateObject",
    "ReplicateTags",
    "RestoreObject",
    "SubmitMultiRegionAccessPointRoutes",
    "TagResource",
    "UntagResource",
    "UpdateAccessGrantsLocation",
    "UpdateBucketMetadataInventoryTableConfiguration",
    "UpdateBucketMetadataJournalTableConfiguration",
    "UpdateJobPriority",
    "UpdateJobStatus",
    "UpdateStorageLensGroup",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_is_case_insensitive_and_knows_prefixes() {
        assert_eq!(lookup("AWS:SOURCEIP").map(|k| k.ty), Some(KeyType::Ip));
        assert_eq!(
            lookup("aws:PrincipalTag/team").map(|k| k.name),
            Some("aws:PrincipalTag/")
        );
        assert!(lookup("aws:PrincipalTag/").is_none());
        assert!(lookup("s3:RequestObjectTagKeys").is_some_and(|k| k.multi));
        assert!(lookup("aws:SourceVpc").is_some_and(|k| !k.filled));
        assert!(lookup("aws:SourceIP ").is_none());
        assert!(lookup("s3:existingobjecttag/Class").is_some());
    }

    #[test]
    fn catalogue_has_no_duplicates() {
        let mut names: Vec<String> = KEYS.iter().map(|k| k.name.to_lowercase()).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
        let mut actions: Vec<&str> = S3_ACTIONS.to_vec();
        actions.sort_unstable();
        assert_eq!(actions.as_slice(), S3_ACTIONS, "keep S3_ACTIONS sorted");
    }
}
