//! Conversations, messages and batches: what is read and listed, and the writes that are plain statements.
