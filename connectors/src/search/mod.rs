//! The embedded full-text search index behind `GET /v1/search` (DESIGN §2 step 7, §6).
//!
//! The search projector feeds it the listings that became visible ([`IndexChange::Upsert`]) and
//! the ones that were hidden ([`IndexChange::Remove`]) in batches, each committed together with
//! the projector's checkpoint (an opaque string, typically its input offsets) as the tantivy
//! commit payload. After a crash the projector reads [`SearchIndex::checkpoint`] and resumes from
//! there; replaying changes is harmless because every change is idempotent.
//!
//! There is one document per (tenant, offer). Tenant and region are exact-match filters, so a
//! query never reaches another tenant's listings.

mod schema;
pub mod sink;
#[cfg(test)]
mod tests;

use porch_schemas::{Listing, OfferId, ProductId, RegionCode, SellerId, Sku, TenantId};
use schema::{Fields, OFFER_ID};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};
use tantivy::collector::sort_key::{SortBySimilarityScore, SortByString};
use tantivy::collector::{Count, TopDocs};
use tantivy::directory::error::OpenDirectoryError;
use tantivy::directory::MmapDirectory;
use tantivy::indexer::IndexWriterOptions;
use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, Query, QueryParser, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, Score, Searcher,
    TantivyDocument, TantivyError, Term,
};

/// Memory the writer may buffer before it flushes a segment. Tantivy's floor is 15 MB; the whole
/// process must stay small (DESIGN §6, embedded mode).
const WRITER_MEMORY_BUDGET: usize = 20_000_000;

/// Page size bounds: a query asks for 1 to 100 hits.
pub const MAX_LIMIT: usize = 100;

/// Longer query strings are cut to this many characters, bounding the cost of parsing.
const MAX_QUERY_CHARS: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("cannot create the search index directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the search index directory: {0}")]
    OpenDirectory(#[from] OpenDirectoryError),
    #[error("search index error: {0}")]
    Index(#[from] TantivyError),
    #[error("listing JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("indexed document {0:?} has no stored listing")]
    MissingListing(DocAddress),
    #[error("the cursor is not one this search returned")]
    InvalidCursor,
    #[error("the search index was opened read-only")]
    ReadOnly,
}

impl SearchError {
    /// Whether the error is the caller's (a 400), not the index's (a 500).
    pub fn is_bad_request(&self) -> bool {
        matches!(self, SearchError::InvalidCursor)
    }
}

/// One change to the index. Both are idempotent: applying one twice leaves the index as
/// applying it once.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "batches are mostly upserts; boxing each listing would only add an allocation"
)]
pub enum IndexChange {
    /// The listing is visible: it replaces any document of the same tenant and offer.
    Upsert { tenant: TenantId, listing: Listing },
    /// The listing is hidden: its document goes, if there was one.
    Remove { tenant: TenantId, offer_id: OfferId },
}

/// A search within one tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub tenant: TenantId,
    /// Only listings of this region, when given.
    pub region: Option<RegionCode>,
    /// Words to look for in title, description, brand and category (query syntax such as
    /// `"phrases"`, `+must -not` is understood, and input it cannot parse is searched leniently).
    /// Absent or blank lists every listing, by offer id.
    pub text: Option<String>,
    /// Hits per page, clamped to 1..=100.
    pub limit: usize,
    /// `next_cursor` of the previous page, if any.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchPage {
    pub hits: Vec<SearchHit>,
    /// Pass it as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// How many listings match in all.
    pub total: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchHit {
    pub offer_id: OfferId,
    pub product_id: ProductId,
    pub sku: Sku,
    pub seller: SellerId,
    pub region: RegionCode,
    pub title: String,
    pub description: Option<String>,
    pub brand: Option<String>,
    pub category: Option<String>,
    pub image: Option<String>,
    pub price_minor: i64,
    pub currency: String,
    pub compare_at_minor: Option<i64>,
    pub available: i64,
    pub channels: Vec<String>,
    pub options: BTreeMap<String, String>,
    /// Relevance to the text; 0 when there is no text.
    pub score: f32,
}

impl SearchHit {
    fn new(listing: Listing, score: Score) -> Self {
        Self {
            offer_id: listing.offer_id,
            product_id: listing.product_id,
            sku: listing.sku,
            seller: listing.seller,
            region: listing.region,
            title: listing.title,
            description: listing.description,
            brand: listing.brand,
            category: listing.category,
            image: listing.image,
            price_minor: listing.price.amount_minor(),
            currency: listing.price.currency().to_string(),
            compare_at_minor: listing.compare_at.map(|m| m.amount_minor()),
            available: listing.available,
            channels: listing
                .channels
                .iter()
                .map(|c| c.as_str().to_owned())
                .collect(),
            options: listing.options,
            score,
        }
    }
}

/// The index, its single writer and a reader refreshed after every commit. Share it in an `Arc`.
pub struct SearchIndex {
    index: Index,
    fields: Fields,
    /// None when opened read-only (another process writes).
    writer: Option<Mutex<IndexWriter>>,
    reader: IndexReader,
    parser: QueryParser,
    /// The payload of the last commit, kept here so reading it needs no I/O.
    checkpoint: RwLock<Option<String>>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("index", &self.index)
            .field("checkpoint", &self.checkpoint())
            .finish_non_exhaustive()
    }
}

impl SearchIndex {
    /// Opens the index in `dir`, creating the directory and the index when they do not exist.
    pub fn open(dir: &Path) -> Result<Self, SearchError> {
        std::fs::create_dir_all(dir).map_err(|source| SearchError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let (schema, fields) = schema::build();
        let index = Index::open_or_create(MmapDirectory::open(dir)?, schema)?;
        Self::with_index(index, fields, true)
    }

    /// Opens the index in `dir` for searching only, while another process (`porch connector
    /// search`) writes it; creates an empty index when there is none yet. Searches see each
    /// commit of the writer shortly after it lands.
    pub fn open_read_only(dir: &Path) -> Result<Self, SearchError> {
        std::fs::create_dir_all(dir).map_err(|source| SearchError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let (schema, fields) = schema::build();
        let index = Index::open_or_create(MmapDirectory::open(dir)?, schema)?;
        Self::with_index(index, fields, false)
    }

    /// A fresh index in memory, for tests.
    pub fn open_in_ram() -> Result<Self, SearchError> {
        let (schema, fields) = schema::build();
        Self::with_index(Index::create_in_ram(schema), fields, true)
    }

    fn with_index(index: Index, fields: Fields, write: bool) -> Result<Self, SearchError> {
        schema::register_tokenizers(&index);
        let writer = if write {
            Some(Mutex::new(
                index.writer_with_options(
                    IndexWriterOptions::builder()
                        .memory_budget_per_thread(WRITER_MEMORY_BUDGET)
                        .num_worker_threads(1)
                        .num_merge_threads(1)
                        .build(),
                )?,
            ))
        } else {
            None
        };
        let policy = if write {
            ReloadPolicy::Manual
        } else {
            ReloadPolicy::OnCommitWithDelay
        };
        let reader = index.reader_builder().reload_policy(policy).try_into()?;
        let mut parser = QueryParser::for_index(&index, fields.text_fields().to_vec());
        // The title says most about a listing; description words weigh the least.
        for (field, boost) in [
            (fields.title, 2.0),
            (fields.brand, 1.5),
            (fields.category, 1.2),
        ] {
            parser.set_field_boost(field, boost);
        }
        let checkpoint = index.load_metas()?.payload;
        Ok(Self {
            index,
            fields,
            writer,
            reader,
            parser,
            checkpoint: RwLock::new(checkpoint),
        })
    }

    /// The checkpoint committed with the last applied batch; `None` on a new index.
    pub fn checkpoint(&self) -> Option<String> {
        self.checkpoint
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Applies a batch and commits it with `checkpoint` as the commit payload, atomically: after
    /// a crash the index holds either the whole batch and its checkpoint or neither. When this
    /// returns, searches see the batch. On error nothing of the batch is kept.
    pub fn apply(&self, changes: &[IndexChange], checkpoint: &str) -> Result<(), SearchError> {
        let Some(lock) = &self.writer else {
            return Err(SearchError::ReadOnly);
        };
        let mut writer = Self::lock_writer(lock);
        if changes.is_empty() && self.checkpoint().as_deref() == Some(checkpoint) {
            return Ok(());
        }
        if let Err(err) = self.commit_batch(&mut writer, changes, checkpoint) {
            // Drop what the failed batch queued, so the next commit carries only its own batch.
            if let Err(rollback) = writer.rollback() {
                tracing::error!(error = %rollback, "search index rollback failed");
            }
            return Err(err);
        }
        // Searches see the batch before its checkpoint is shown: a position read from
        // `checkpoint` is always searchable.
        self.reader.reload()?;
        *self
            .checkpoint
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(checkpoint.to_owned());
        Ok(())
    }

    fn commit_batch(
        &self,
        writer: &mut IndexWriter,
        changes: &[IndexChange],
        checkpoint: &str,
    ) -> Result<(), SearchError> {
        for change in changes {
            match change {
                IndexChange::Upsert { tenant, listing } => {
                    let json = serde_json::to_string(listing)?;
                    writer.delete_term(self.fields.key_term(tenant, &listing.offer_id));
                    writer.add_document(self.fields.document(tenant, listing, json))?;
                }
                IndexChange::Remove { tenant, offer_id } => {
                    writer.delete_term(self.fields.key_term(tenant, offer_id));
                }
            }
        }
        let mut prepared = writer.prepare_commit()?;
        prepared.set_payload(checkpoint);
        prepared.commit()?;
        Ok(())
    }

    /// The writer, recovered if a thread panicked while holding it: whatever that thread had
    /// queued is rolled back to the last commit.
    fn lock_writer(lock: &Mutex<IndexWriter>) -> MutexGuard<'_, IndexWriter> {
        match lock.lock() {
            Ok(writer) => writer,
            Err(poisoned) => {
                let mut writer = poisoned.into_inner();
                if let Err(err) = writer.rollback() {
                    tracing::error!(error = %err, "search index rollback after a panic failed");
                }
                lock.clear_poison();
                writer
            }
        }
    }

    /// One page of the tenant's listings matching the query: by relevance then offer id when
    /// there is text, by offer id otherwise.
    pub fn search(&self, q: &SearchQuery) -> Result<SearchPage, SearchError> {
        let offset = match &q.cursor {
            Some(cursor) => decode_cursor(cursor)?,
            None => 0,
        };
        let limit = q.limit.clamp(1, MAX_LIMIT);
        let text = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty());
        let query = self.build_query(&q.tenant, q.region.as_ref(), text);

        let searcher = self.reader.searcher();
        let total = searcher.search(&query, &Count)?;
        if offset >= total {
            return Ok(SearchPage {
                hits: Vec::new(),
                next_cursor: None,
                total,
            });
        }
        let top = TopDocs::with_limit(limit.min(total - offset)).and_offset(offset);
        let ranked: Vec<(Score, DocAddress)> = if text.is_some() {
            let by_score_then_id = (
                (SortBySimilarityScore, Order::Desc),
                (SortByString::for_field(OFFER_ID), Order::Asc),
            );
            searcher
                .search(&query, &top.order_by(by_score_then_id))?
                .into_iter()
                .map(|((score, _), address)| (score, address))
                .collect()
        } else {
            let by_id = (SortByString::for_field(OFFER_ID), Order::Asc);
            searcher
                .search(&query, &top.order_by(by_id))?
                .into_iter()
                .map(|(_, address)| (0.0, address))
                .collect()
        };

        let hits = ranked
            .into_iter()
            .map(|(score, address)| {
                Ok(SearchHit::new(
                    self.stored_listing(&searcher, address)?,
                    score,
                ))
            })
            .collect::<Result<Vec<_>, SearchError>>()?;
        let end = offset + hits.len();
        let next_cursor = (end < total).then(|| encode_cursor(end));
        Ok(SearchPage {
            hits,
            next_cursor,
            total,
        })
    }

    fn stored_listing(
        &self,
        searcher: &Searcher,
        address: DocAddress,
    ) -> Result<Listing, SearchError> {
        let doc: TantivyDocument = searcher.doc(address)?;
        let json = doc
            .get_first(self.fields.listing)
            .and_then(|value| value.as_str())
            .ok_or(SearchError::MissingListing(address))?;
        Ok(serde_json::from_str(json)?)
    }

    /// Tenant (and region) as filters that do not score, AND the text query when there is one.
    fn build_query(
        &self,
        tenant: &TenantId,
        region: Option<&RegionCode>,
        text: Option<&str>,
    ) -> BooleanQuery {
        let filter = |term: Term| -> Box<dyn Query> {
            Box::new(ConstScoreQuery::new(
                Box::new(TermQuery::new(term, IndexRecordOption::Basic)),
                0.0,
            ))
        };
        let mut clauses = vec![(
            Occur::Must,
            filter(Term::from_field_text(self.fields.tenant, tenant.as_str())),
        )];
        if let Some(region) = region {
            clauses.push((
                Occur::Must,
                filter(Term::from_field_text(self.fields.region, region.as_str())),
            ));
        }
        if let Some(text) = text {
            clauses.push((Occur::Must, self.parse_text(text)));
        }
        BooleanQuery::new(clauses)
    }

    /// The user's text as a query. Input the strict grammar refuses (`"unbalanced`, `AND OR`,
    /// unknown fields) is parsed leniently instead, so weird input finds little, never fails.
    fn parse_text(&self, text: &str) -> Box<dyn Query> {
        let text = match text.char_indices().nth(MAX_QUERY_CHARS) {
            Some((cut, _)) => &text[..cut],
            None => text,
        };
        match self.parser.parse_query(text) {
            Ok(query) => query,
            Err(err) => {
                tracing::debug!(error = %err, "search text parsed leniently");
                self.parser.parse_query_lenient(text).0
            }
        }
    }
}

/// Cursors carry the offset of the next page's first hit.
fn encode_cursor(offset: usize) -> String {
    offset.to_string()
}

fn decode_cursor(cursor: &str) -> Result<usize, SearchError> {
    cursor.parse().map_err(|_| SearchError::InvalidCursor)
}
