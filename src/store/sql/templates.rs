//! Groups, templates, API keys and what the console reads.
