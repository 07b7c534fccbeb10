//! The index layout: one document per (tenant, offer), filter fields indexed raw, the listing's
//! words analysed for full-text search, and the whole listing stored as JSON to rebuild hits.

use porch_schemas::{Listing, OfferId, TenantId};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, STORED, STRING,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer,
};
use tantivy::{Index, TantivyDocument, Term};

/// Name of the analyser of the full-text fields. Tokenizers are not persisted with the index,
/// so it is registered again on every open.
pub(super) const TEXT_TOKENIZER: &str = "porch_text";

/// Name of the offer id field, also a string fast field used as the stable sort key.
pub(super) const OFFER_ID: &str = "offer_id";

/// Words longer than this are dropped at indexing and at query time alike.
const MAX_TOKEN_BYTES: usize = 40;

/// The fields of the index, resolved once.
#[derive(Debug, Clone, Copy)]
pub(super) struct Fields {
    /// `<tenant>/<offer_id>`: the identity term that upserts and removes delete by.
    pub key: Field,
    pub tenant: Field,
    pub region: Field,
    pub offer_id: Field,
    pub title: Field,
    pub description: Field,
    pub brand: Field,
    pub category: Field,
    /// The whole listing as JSON, stored only.
    pub listing: Field,
}

impl Fields {
    /// The fields the text query searches by default.
    pub fn text_fields(&self) -> [Field; 4] {
        [self.title, self.description, self.brand, self.category]
    }

    /// The identity term of a tenant's offer. Tenant ids cannot contain '/', so the key is
    /// unambiguous.
    pub fn key_term(&self, tenant: &TenantId, offer_id: &OfferId) -> Term {
        Term::from_field_text(self.key, &format!("{tenant}/{offer_id}"))
    }

    /// The document of one listing; `listing_json` is its serialised form.
    pub fn document(
        &self,
        tenant: &TenantId,
        listing: &Listing,
        listing_json: String,
    ) -> TantivyDocument {
        let mut doc = TantivyDocument::default();
        doc.add_text(self.key, format!("{tenant}/{}", listing.offer_id));
        doc.add_text(self.tenant, tenant.as_str());
        doc.add_text(self.region, listing.region.as_str());
        doc.add_text(self.offer_id, listing.offer_id.as_str());
        doc.add_text(self.title, &listing.title);
        let optional = [
            (self.description, &listing.description),
            (self.brand, &listing.brand),
            (self.category, &listing.category),
        ];
        for (field, value) in optional {
            if let Some(value) = value {
                doc.add_text(field, value);
            }
        }
        doc.add_text(self.listing, listing_json);
        doc
    }
}

/// Builds the schema and its fields. Field ids follow the order of declaration, so the fields
/// match any index created with this schema (`Index::open_or_create` refuses a different one).
pub(super) fn build() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(TEXT_TOKENIZER)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        key: builder.add_text_field("key", STRING),
        tenant: builder.add_text_field("tenant", STRING),
        region: builder.add_text_field("region", STRING),
        offer_id: builder.add_text_field(OFFER_ID, STRING | FAST),
        title: builder.add_text_field("title", text.clone()),
        description: builder.add_text_field("description", text.clone()),
        brand: builder.add_text_field("brand", text.clone()),
        category: builder.add_text_field("category", text),
        listing: builder.add_text_field("listing", STORED),
    };
    (builder.build(), fields)
}

/// Registers the analyser of the text fields: Unicode words, lower-cased and folded to ASCII
/// where they have an ASCII form, so `Café` matches `cafe`. No stemming: listings come in many
/// languages.
pub(super) fn register_tokenizers(index: &Index) {
    let analyzer = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TOKEN_BYTES))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build();
    index.tokenizers().register(TEXT_TOKENIZER, analyzer);
}
