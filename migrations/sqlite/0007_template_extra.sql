-- What Meta's richer templates add beyond header, body, footer and buttons: the carousel's
-- cards, a limited-time offer, the declared parameter format and why plantilla cannot send
-- the template, when it cannot (JSON object, see domain::template::TemplateExtra).
ALTER TABLE templates ADD COLUMN extra TEXT NOT NULL DEFAULT '{}';
