//! Integration tests of the Lambda handler (decoding, credentials, upstream faults).
