//! The comments of a proto's elements (its `source_code_info`), as OpenAPI descriptions.

use prost_reflect::{
    FieldDescriptor, FileDescriptor, MessageDescriptor, MethodDescriptor, ServiceDescriptor,
};

/// A comment as a description: its lines trimmed and joined, blank lines kept as paragraphs.
pub fn comment(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .replace("\n\n", "\u{0}")
        .replace('\n', " ")
        .replace('\u{0}', "\n\n")
}

/// A service's leading comment.
pub fn service_comments(s: &ServiceDescriptor) -> String {
    leading(s.parent_file(), s.path())
}

/// A method's leading comment.
pub fn method_comments(m: &MethodDescriptor) -> String {
    leading(m.parent_file(), m.path())
}

/// A message's leading comment.
pub fn message_comments(m: &MessageDescriptor) -> String {
    leading(m.parent_file(), m.path())
}

/// A field's leading comment, else its trailing one.
pub fn field_comments(f: &FieldDescriptor) -> String {
    let mut text = leading(f.parent_file(), f.path());
    if text.is_empty() {
        text = trailing(f.parent_file(), f.path());
    }
    text
}

/// The leading comment of the element at `path` in `file`.
fn leading(file: FileDescriptor, path: &[i32]) -> String {
    location(&file, path)
        .and_then(|l| l.leading_comments)
        .unwrap_or_default()
}

fn trailing(file: FileDescriptor, path: &[i32]) -> String {
    location(&file, path)
        .and_then(|l| l.trailing_comments)
        .unwrap_or_default()
}

fn location(
    file: &FileDescriptor,
    path: &[i32],
) -> Option<prost_types::source_code_info::Location> {
    let proto = file.file_descriptor_proto();
    let info = proto.source_code_info.as_ref()?;
    info.location.iter().find(|l| l.path == path).cloned()
}
