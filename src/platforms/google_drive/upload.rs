//! File uploads (Drive API v3 multipart upload,
//! https://developers.google.com/workspace/drive/api/guides/manage-uploads#multipart): one
//! `multipart/related` request carrying the JSON metadata and the bytes. Each upload is
//! tagged with an `appProperties` key so a later attempt finds it by query
//! (`appProperties has { key='…' and value='…' }`,
//! https://developers.google.com/workspace/drive/api/guides/search-files) instead of
//! uploading again, and is sent under an id from `files.generateIds`, so the HTTP layer's
//! own retry of a lost answer lands on 409 `fileIdInUse`, not on a second copy.

use serde::Deserialize;

use super::{FOLDER_MIME, Folder, GoogleDrive, INFO, check_name, quote, urlencoding};
use crate::platforms::error::{ErrorKind, PlatformError};

/// The `appProperties` key that ties an uploaded report file to its report id.
pub const REPORT_PROPERTY: &str = "switchboard_report";
/// The sub-folder of a client's folder that reports go in.
pub const REPORTS_FOLDER: &str = "Reports";
/// Drive's limit for a multipart upload (larger files need a resumable upload).
pub const MULTIPART_MAX_BYTES: usize = 5 * 1024 * 1024;
const UPLOADED_FIELDS: &str = "id,name,webViewLink";

/// A file stored in Drive: its id and the link people open.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StoredFile {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "webViewLink", default)]
    pub web_view_link: Option<String>,
}

/// One file to upload.
pub struct Upload<'a> {
    pub name: &'a str,
    pub parent: &'a str,
    pub mime_type: &'a str,
    /// One private-to-Drive `appProperties` entry that identifies the file (key, value).
    pub tag: (&'a str, &'a str),
    pub bytes: &'a [u8],
}

#[derive(Deserialize)]
struct Found {
    #[serde(default)]
    files: Vec<StoredFile>,
}

impl GoogleDrive {
    /// The `name` folder in `parent`, created when missing.
    pub async fn ensure_folder(&self, name: &str, parent: &str) -> Result<Folder, PlatformError> {
        match self.find_folder(name, parent).await? {
            Some(folder) => Ok(folder),
            None => self.create_folder(name, parent).await,
        }
    }

    /// The non-trashed file in `parent` tagged `key = value` in its `appProperties`, if any.
    pub async fn find_tagged(&self, parent: &str, key: &str, value: &str) -> Result<Option<StoredFile>, PlatformError> {
        let url = format!("{}/drive/v3/files", self.base_url);
        let q = tagged_query(parent, key, value);
        let fields = format!("files({UPLOADED_FIELDS})");
        let mut params: Vec<(&str, &str)> = vec![
            ("q", &q),
            ("fields", &fields),
            ("pageSize", "10"),
            ("orderBy", "createdTime"),
            ("supportsAllDrives", "true"),
            ("includeItemsFromAllDrives", "true"),
        ];
        if let Some(drive) = &self.shared_drive_id {
            params.extend([("corpora", "drive"), ("driveId", drive.as_str())]);
        }
        let found: Found =
            self.send("list_files", |c, token| c.get(&url).bearer_auth(token).query(&params)).await?.json()?;
        Ok(found.files.into_iter().next())
    }

    /// Uploads `file` unless a file with its tag is already in its parent (then that one is answered).
    pub async fn upload_once(&self, file: &Upload<'_>) -> Result<StoredFile, PlatformError> {
        if let Some(found) = self.find_tagged(file.parent, file.tag.0, file.tag.1).await? {
            return Ok(found);
        }
        let id = self.generate_ids(1).await?.remove(0);
        self.upload_with_id(file, &id).await
    }

    /// A multipart upload under `id`; a 409 `fileIdInUse` (our earlier attempt landed) answers that file.
    pub async fn upload_with_id(&self, file: &Upload<'_>, id: &str) -> Result<StoredFile, PlatformError> {
        check_name(file.name)?;
        if file.bytes.len() > MULTIPART_MAX_BYTES {
            return Err(PlatformError::new(
                INFO.key,
                ErrorKind::Invalid,
                format!("{} is {} bytes; a multipart upload takes at most 5 MB", file.name, file.bytes.len()),
            ));
        }
        let metadata = serde_json::json!({
            "id": id,
            "name": file.name,
            "parents": [file.parent],
            "mimeType": file.mime_type,
            "appProperties": { file.tag.0: file.tag.1 },
        });
        let boundary = format!("switchboard-{id}");
        let body = multipart_related(&boundary, &metadata, file.mime_type, file.bytes);
        let content_type = format!("multipart/related; boundary={boundary}");
        let url = format!("{}/upload/drive/v3/files", self.base_url);
        let sent = self
            .send("upload_file", |c, token| {
                c.post(&url)
                    .bearer_auth(token)
                    .query(&[("uploadType", "multipart"), ("supportsAllDrives", "true"), ("fields", UPLOADED_FIELDS)])
                    .header(reqwest::header::CONTENT_TYPE, &content_type)
                    .body(body.clone())
            })
            .await;
        match sent {
            Ok(reply) => reply.json(),
            Err(e) if e.code.as_deref() == Some("fileIdInUse") => self.get_file(id).await,
            Err(e) => Err(e),
        }
    }

    /// One file's id, name and link (`files.get`).
    pub async fn get_file(&self, id: &str) -> Result<StoredFile, PlatformError> {
        let url = format!("{}/drive/v3/files/{}", self.base_url, urlencoding(id));
        self.send("get_file", |c, token| {
            c.get(&url).bearer_auth(token).query(&[("supportsAllDrives", "true"), ("fields", UPLOADED_FIELDS)])
        })
        .await?
        .json()
    }

    /// A report's PDF in the client folder's `Reports/` sub-folder (created when missing),
    /// uploaded once per report id however often this is called.
    pub async fn upload_report_pdf(
        &self,
        client_folder: &str,
        report_id: &str,
        name: &str,
        pdf: &[u8],
    ) -> Result<StoredFile, PlatformError> {
        let reports = self.ensure_folder(REPORTS_FOLDER, client_folder).await?;
        self.upload_once(&Upload {
            name,
            parent: &reports.id,
            mime_type: "application/pdf",
            tag: (REPORT_PROPERTY, report_id),
            bytes: pdf,
        })
        .await
    }
}

/// The Drive query for a non-folder, non-trashed file in `parent` tagged `key = value`.
pub fn tagged_query(parent: &str, key: &str, value: &str) -> String {
    format!(
        "{} in parents and appProperties has {{ key={} and value={} }} and mimeType != {} and trashed = false",
        quote(parent),
        quote(key),
        quote(value),
        quote(FOLDER_MIME)
    )
}

/// A `multipart/related` body: the JSON metadata part, then the media part.
fn multipart_related(boundary: &str, metadata: &serde_json::Value, mime_type: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(bytes.len() + 512);
    body.extend_from_slice(format!("--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n").as_bytes());
    body.extend_from_slice(metadata.to_string().as_bytes());
    body.extend_from_slice(format!("\r\n--{boundary}\r\nContent-Type: {mime_type}\r\n\r\n").as_bytes());
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_query_quotes_every_literal() {
        assert_eq!(
            tagged_query("f'1", "switchboard_report", "r1"),
            "'f\\'1' in parents and appProperties has { key='switchboard_report' and value='r1' } \
             and mimeType != 'application/vnd.google-apps.folder' and trashed = false"
        );
    }

    #[test]
    fn the_body_has_the_metadata_then_the_media() {
        let body = multipart_related("b", &serde_json::json!({"name": "x.pdf"}), "application/pdf", b"%PDF-1.7");
        let text = String::from_utf8(body).unwrap();
        assert_eq!(
            text,
            "--b\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{\"name\":\"x.pdf\"}\r\n\
             --b\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.7\r\n--b--\r\n"
        );
    }
}
