//! The S3 operations s3warden understands, and for each one the IAM actions it
//! needs (S3-SEMANTICS §1.3–1.5, from the Service Authorization Reference and
//! botocore's S3 model).

/// A bucket sub-resource addressed as `/{bucket}?{sub}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketSub {
    Acl,
    Policy,
    PolicyStatus,
    Versioning,
    Lifecycle,
    Cors,
    Tagging,
    Encryption,
    Website,
    Notification,
    Logging,
    ObjectLock,
    PublicAccessBlock,
    OwnershipControls,
    RequestPayment,
    Accelerate,
    Replication,
    Metrics,
    Analytics,
    Inventory,
    IntelligentTiering,
    Location,
}

/// An object sub-resource addressed as `/{bucket}/{key}?{sub}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectSub {
    Acl,
    Tagging,
    Retention,
    LegalHold,
    Attributes,
    Torrent,
}

/// The HTTP verb of a sub-resource operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Put,
    Delete,
}

/// One classified S3 request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    ListBuckets,
    CreateBucket,
    DeleteBucket,
    HeadBucket,
    ListObjects,
    ListObjectsV2,
    ListObjectVersions,
    ListMultipartUploads,
    DeleteObjects,
    Bucket(BucketSub, Verb),
    GetObject,
    HeadObject,
    PutObject,
    CopyObject,
    DeleteObject,
    CreateMultipartUpload,
    UploadPart,
    UploadPartCopy,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    Object(ObjectSub, Verb),
    RestoreObject,
    SelectObjectContent,
    /// A browser form upload (`POST /{bucket}` with multipart/form-data).
    PostObject,
}

impl BucketSub {
    /// The query parameter naming this sub-resource.
    pub fn param(self) -> &'static str {
        match self {
            BucketSub::Acl => "acl",
            BucketSub::Policy => "policy",
            BucketSub::PolicyStatus => "policyStatus",
            BucketSub::Versioning => "versioning",
            BucketSub::Lifecycle => "lifecycle",
            BucketSub::Cors => "cors",
            BucketSub::Tagging => "tagging",
            BucketSub::Encryption => "encryption",
            BucketSub::Website => "website",
            BucketSub::Notification => "notification",
            BucketSub::Logging => "logging",
            BucketSub::ObjectLock => "object-lock",
            BucketSub::PublicAccessBlock => "publicAccessBlock",
            BucketSub::OwnershipControls => "ownershipControls",
            BucketSub::RequestPayment => "requestPayment",
            BucketSub::Accelerate => "accelerate",
            BucketSub::Replication => "replication",
            BucketSub::Metrics => "metrics",
            BucketSub::Analytics => "analytics",
            BucketSub::Inventory => "inventory",
            BucketSub::IntelligentTiering => "intelligent-tiering",
            BucketSub::Location => "location",
        }
    }

    /// The sub-resource a query parameter names: [`BucketSub::param`]
    /// inverted as one `match`, which compiles to comparisons by length
    /// before bytes, instead of a scan that asks every variant its name
    /// (each query parameter of every request is looked up).
    pub fn from_param(name: &str) -> Option<BucketSub> {
        Some(match name {
            "acl" => BucketSub::Acl,
            "policy" => BucketSub::Policy,
            "policyStatus" => BucketSub::PolicyStatus,
            "versioning" => BucketSub::Versioning,
            "lifecycle" => BucketSub::Lifecycle,
            "cors" => BucketSub::Cors,
            "tagging" => BucketSub::Tagging,
            "encryption" => BucketSub::Encryption,
            "website" => BucketSub::Website,
            "notification" => BucketSub::Notification,
            "logging" => BucketSub::Logging,
            "object-lock" => BucketSub::ObjectLock,
            "publicAccessBlock" => BucketSub::PublicAccessBlock,
            "ownershipControls" => BucketSub::OwnershipControls,
            "requestPayment" => BucketSub::RequestPayment,
            "accelerate" => BucketSub::Accelerate,
            "replication" => BucketSub::Replication,
            "metrics" => BucketSub::Metrics,
            "analytics" => BucketSub::Analytics,
            "inventory" => BucketSub::Inventory,
            "intelligent-tiering" => BucketSub::IntelligentTiering,
            "location" => BucketSub::Location,
            _ => return None,
        })
    }

    pub const ALL: [BucketSub; 22] = [
        BucketSub::Acl,
        BucketSub::Policy,
        BucketSub::PolicyStatus,
        BucketSub::Versioning,
        BucketSub::Lifecycle,
        BucketSub::Cors,
        BucketSub::Tagging,
        BucketSub::Encryption,
        BucketSub::Website,
        BucketSub::Notification,
        BucketSub::Logging,
        BucketSub::ObjectLock,
        BucketSub::PublicAccessBlock,
        BucketSub::OwnershipControls,
        BucketSub::RequestPayment,
        BucketSub::Accelerate,
        BucketSub::Replication,
        BucketSub::Metrics,
        BucketSub::Analytics,
        BucketSub::Inventory,
        BucketSub::IntelligentTiering,
        BucketSub::Location,
    ];

    /// The operation name and IAM action for a verb, or `None` when S3 has no
    /// such operation (e.g. `DELETE ?acl`).
    pub fn operation(self, verb: Verb) -> Option<(&'static str, &'static str)> {
        use BucketSub as B;
        use Verb::{Delete, Get, Put};
        Some(match (self, verb) {
            (B::Acl, Get) => ("GetBucketAcl", "s3:GetBucketAcl"),
            (B::Acl, Put) => ("PutBucketAcl", "s3:PutBucketAcl"),
            (B::Policy, Get) => ("GetBucketPolicy", "s3:GetBucketPolicy"),
            (B::Policy, Put) => ("PutBucketPolicy", "s3:PutBucketPolicy"),
            (B::Policy, Delete) => ("DeleteBucketPolicy", "s3:DeleteBucketPolicy"),
            (B::PolicyStatus, Get) => ("GetBucketPolicyStatus", "s3:GetBucketPolicyStatus"),
            (B::Versioning, Get) => ("GetBucketVersioning", "s3:GetBucketVersioning"),
            (B::Versioning, Put) => ("PutBucketVersioning", "s3:PutBucketVersioning"),
            (B::Lifecycle, Get) => (
                "GetBucketLifecycleConfiguration",
                "s3:GetLifecycleConfiguration",
            ),
            (B::Lifecycle, Put) => (
                "PutBucketLifecycleConfiguration",
                "s3:PutLifecycleConfiguration",
            ),
            (B::Lifecycle, Delete) => ("DeleteBucketLifecycle", "s3:PutLifecycleConfiguration"),
            (B::Cors, Get) => ("GetBucketCors", "s3:GetBucketCORS"),
            (B::Cors, Put) => ("PutBucketCors", "s3:PutBucketCORS"),
            (B::Cors, Delete) => ("DeleteBucketCors", "s3:PutBucketCORS"),
            (B::Tagging, Get) => ("GetBucketTagging", "s3:GetBucketTagging"),
            (B::Tagging, Put) => ("PutBucketTagging", "s3:PutBucketTagging"),
            (B::Tagging, Delete) => ("DeleteBucketTagging", "s3:PutBucketTagging"),
            (B::Encryption, Get) => ("GetBucketEncryption", "s3:GetEncryptionConfiguration"),
            (B::Encryption, Put) => ("PutBucketEncryption", "s3:PutEncryptionConfiguration"),
            (B::Encryption, Delete) => ("DeleteBucketEncryption", "s3:PutEncryptionConfiguration"),
            (B::Website, Get) => ("GetBucketWebsite", "s3:GetBucketWebsite"),
            (B::Website, Put) => ("PutBucketWebsite", "s3:PutBucketWebsite"),
            (B::Website, Delete) => ("DeleteBucketWebsite", "s3:DeleteBucketWebsite"),
            (B::Notification, Get) => (
                "GetBucketNotificationConfiguration",
                "s3:GetBucketNotification",
            ),
            (B::Notification, Put) => (
                "PutBucketNotificationConfiguration",
                "s3:PutBucketNotification",
            ),
            (B::Logging, Get) => ("GetBucketLogging", "s3:GetBucketLogging"),
            (B::Logging, Put) => ("PutBucketLogging", "s3:PutBucketLogging"),
            (B::ObjectLock, Get) => (
                "GetObjectLockConfiguration",
                "s3:GetBucketObjectLockConfiguration",
            ),
            (B::ObjectLock, Put) => (
                "PutObjectLockConfiguration",
                "s3:PutBucketObjectLockConfiguration",
            ),
            (B::PublicAccessBlock, Get) => {
                ("GetPublicAccessBlock", "s3:GetBucketPublicAccessBlock")
            }
            (B::PublicAccessBlock, Put) => {
                ("PutPublicAccessBlock", "s3:PutBucketPublicAccessBlock")
            }
            (B::PublicAccessBlock, Delete) => {
                ("DeletePublicAccessBlock", "s3:PutBucketPublicAccessBlock")
            }
            (B::OwnershipControls, Get) => (
                "GetBucketOwnershipControls",
                "s3:GetBucketOwnershipControls",
            ),
            (B::OwnershipControls, Put) => (
                "PutBucketOwnershipControls",
                "s3:PutBucketOwnershipControls",
            ),
            (B::OwnershipControls, Delete) => (
                "DeleteBucketOwnershipControls",
                "s3:PutBucketOwnershipControls",
            ),
            (B::RequestPayment, Get) => ("GetBucketRequestPayment", "s3:GetBucketRequestPayment"),
            (B::RequestPayment, Put) => ("PutBucketRequestPayment", "s3:PutBucketRequestPayment"),
            (B::Accelerate, Get) => (
                "GetBucketAccelerateConfiguration",
                "s3:GetAccelerateConfiguration",
            ),
            (B::Accelerate, Put) => (
                "PutBucketAccelerateConfiguration",
                "s3:PutAccelerateConfiguration",
            ),
            (B::Replication, Get) => ("GetBucketReplication", "s3:GetReplicationConfiguration"),
            (B::Replication, Put) => ("PutBucketReplication", "s3:PutReplicationConfiguration"),
            (B::Replication, Delete) => {
                ("DeleteBucketReplication", "s3:PutReplicationConfiguration")
            }
            (B::Metrics, Get) => (
                "GetBucketMetricsConfiguration",
                "s3:GetMetricsConfiguration",
            ),
            (B::Metrics, Put) => (
                "PutBucketMetricsConfiguration",
                "s3:PutMetricsConfiguration",
            ),
            (B::Metrics, Delete) => (
                "DeleteBucketMetricsConfiguration",
                "s3:PutMetricsConfiguration",
            ),
            (B::Analytics, Get) => (
                "GetBucketAnalyticsConfiguration",
                "s3:GetAnalyticsConfiguration",
            ),
            (B::Analytics, Put) => (
                "PutBucketAnalyticsConfiguration",
                "s3:PutAnalyticsConfiguration",
            ),
            (B::Analytics, Delete) => (
                "DeleteBucketAnalyticsConfiguration",
                "s3:PutAnalyticsConfiguration",
            ),
            (B::Inventory, Get) => (
                "GetBucketInventoryConfiguration",
                "s3:GetInventoryConfiguration",
            ),
            (B::Inventory, Put) => (
                "PutBucketInventoryConfiguration",
                "s3:PutInventoryConfiguration",
            ),
            (B::Inventory, Delete) => (
                "DeleteBucketInventoryConfiguration",
                "s3:PutInventoryConfiguration",
            ),
            (B::IntelligentTiering, Get) => (
                "GetBucketIntelligentTieringConfiguration",
                "s3:GetIntelligentTieringConfiguration",
            ),
            (B::IntelligentTiering, Put) => (
                "PutBucketIntelligentTieringConfiguration",
                "s3:PutIntelligentTieringConfiguration",
            ),
            (B::IntelligentTiering, Delete) => (
                "DeleteBucketIntelligentTieringConfiguration",
                "s3:PutIntelligentTieringConfiguration",
            ),
            (B::Location, Get) => ("GetBucketLocation", "s3:GetBucketLocation"),
            _ => return None,
        })
    }
}

impl ObjectSub {
    pub fn param(self) -> &'static str {
        match self {
            ObjectSub::Acl => "acl",
            ObjectSub::Tagging => "tagging",
            ObjectSub::Retention => "retention",
            ObjectSub::LegalHold => "legal-hold",
            ObjectSub::Attributes => "attributes",
            ObjectSub::Torrent => "torrent",
        }
    }

    /// The sub-resource a query parameter names: [`ObjectSub::param`]
    /// inverted as one `match`, which compiles to comparisons by length
    /// before bytes, instead of a scan that asks every variant its name
    /// (each query parameter of every request is looked up).
    pub fn from_param(name: &str) -> Option<ObjectSub> {
        Some(match name {
            "acl" => ObjectSub::Acl,
            "tagging" => ObjectSub::Tagging,
            "retention" => ObjectSub::Retention,
            "legal-hold" => ObjectSub::LegalHold,
            "attributes" => ObjectSub::Attributes,
            "torrent" => ObjectSub::Torrent,
            _ => return None,
        })
    }

    pub const ALL: [ObjectSub; 6] = [
        ObjectSub::Acl,
        ObjectSub::Tagging,
        ObjectSub::Retention,
        ObjectSub::LegalHold,
        ObjectSub::Attributes,
        ObjectSub::Torrent,
    ];

    /// The operation name and IAM action(s) for a verb; `versioned` selects the
    /// `*Version*` action that S3 requires when a `versionId` is given.
    pub fn operation(
        self,
        verb: Verb,
        versioned: bool,
    ) -> Option<(&'static str, &'static [&'static str])> {
        use ObjectSub as O;
        use Verb::{Delete, Get, Put};
        Some(match (self, verb, versioned) {
            (O::Acl, Get, false) => ("GetObjectAcl", &["s3:GetObjectAcl"]),
            (O::Acl, Get, true) => ("GetObjectAcl", &["s3:GetObjectVersionAcl"]),
            (O::Acl, Put, false) => ("PutObjectAcl", &["s3:PutObjectAcl"]),
            (O::Acl, Put, true) => ("PutObjectAcl", &["s3:PutObjectVersionAcl"]),
            (O::Tagging, Get, false) => ("GetObjectTagging", &["s3:GetObjectTagging"]),
            (O::Tagging, Get, true) => ("GetObjectTagging", &["s3:GetObjectVersionTagging"]),
            (O::Tagging, Put, false) => ("PutObjectTagging", &["s3:PutObjectTagging"]),
            (O::Tagging, Put, true) => ("PutObjectTagging", &["s3:PutObjectVersionTagging"]),
            (O::Tagging, Delete, false) => ("DeleteObjectTagging", &["s3:DeleteObjectTagging"]),
            (O::Tagging, Delete, true) => {
                ("DeleteObjectTagging", &["s3:DeleteObjectVersionTagging"])
            }
            (O::Retention, Get, _) => ("GetObjectRetention", &["s3:GetObjectRetention"]),
            (O::Retention, Put, _) => ("PutObjectRetention", &["s3:PutObjectRetention"]),
            (O::LegalHold, Get, _) => ("GetObjectLegalHold", &["s3:GetObjectLegalHold"]),
            (O::LegalHold, Put, _) => ("PutObjectLegalHold", &["s3:PutObjectLegalHold"]),
            (O::Attributes, Get, false) => (
                "GetObjectAttributes",
                &["s3:GetObjectAttributes", "s3:GetObject"],
            ),
            (O::Attributes, Get, true) => (
                "GetObjectAttributes",
                &["s3:GetObjectVersionAttributes", "s3:GetObjectVersion"],
            ),
            (O::Torrent, Get, false) => ("GetObjectTorrent", &["s3:GetObjectTorrent"]),
            (O::Torrent, Get, true) => ("GetObjectTorrent", &["s3:GetObjectVersionTorrent"]),
            _ => return None,
        })
    }
}

impl Operation {
    /// S3's name for the operation (as in the API reference and `x-id`).
    pub fn name(&self) -> &'static str {
        match self {
            Operation::ListBuckets => "ListBuckets",
            Operation::CreateBucket => "CreateBucket",
            Operation::DeleteBucket => "DeleteBucket",
            Operation::HeadBucket => "HeadBucket",
            Operation::ListObjects => "ListObjects",
            Operation::ListObjectsV2 => "ListObjectsV2",
            Operation::ListObjectVersions => "ListObjectVersions",
            Operation::ListMultipartUploads => "ListMultipartUploads",
            Operation::DeleteObjects => "DeleteObjects",
            Operation::Bucket(sub, verb) => {
                sub.operation(*verb).map(|(n, _)| n).unwrap_or("Unknown")
            }
            Operation::GetObject => "GetObject",
            Operation::HeadObject => "HeadObject",
            Operation::PutObject => "PutObject",
            Operation::CopyObject => "CopyObject",
            Operation::DeleteObject => "DeleteObject",
            Operation::CreateMultipartUpload => "CreateMultipartUpload",
            Operation::UploadPart => "UploadPart",
            Operation::UploadPartCopy => "UploadPartCopy",
            Operation::CompleteMultipartUpload => "CompleteMultipartUpload",
            Operation::AbortMultipartUpload => "AbortMultipartUpload",
            Operation::ListParts => "ListParts",
            Operation::Object(sub, verb) => sub
                .operation(*verb, false)
                .map(|(n, _)| n)
                .unwrap_or("Unknown"),
            Operation::RestoreObject => "RestoreObject",
            Operation::SelectObjectContent => "SelectObjectContent",
            Operation::PostObject => "PostObject",
        }
    }

    /// Operations that write an object's content (and so take PutObject's
    /// request headers: ACL, tagging, object lock, encryption, metadata).
    pub fn creates_object(&self) -> bool {
        matches!(
            self,
            Operation::PutObject
                | Operation::CopyObject
                | Operation::CreateMultipartUpload
                | Operation::PostObject
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_param_inverts_param_and_knows_no_other_name() {
        for b in BucketSub::ALL {
            assert_eq!(BucketSub::from_param(b.param()), Some(b));
        }
        for o in ObjectSub::ALL {
            assert_eq!(ObjectSub::from_param(o.param()), Some(o));
        }
        for o in ObjectSub::ALL {
            let shared = BucketSub::ALL.iter().any(|b| b.param() == o.param());
            assert_eq!(BucketSub::from_param(o.param()).is_some(), shared, "{o:?}");
        }
        for b in BucketSub::ALL {
            let shared = ObjectSub::ALL.iter().any(|o| o.param() == b.param());
            assert_eq!(ObjectSub::from_param(b.param()).is_some(), shared, "{b:?}");
        }
        for name in [
            "",
            "ACL",
            "acl ",
            "Acl",
            "versions",
            "uploads",
            "X-Amz-Date",
            "tagging=",
            "object_lock",
        ] {
            assert_eq!(BucketSub::from_param(name), None, "{name}");
            assert_eq!(ObjectSub::from_param(name), None, "{name}");
        }
    }
}
