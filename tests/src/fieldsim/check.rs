//! The check after a run: every phone and the server hold the same documents, nothing the
//! ledger recorded is missing, and the figures.

use super::*;

fn sorted_heads(doc: &sync_core::automerge::Automerge) -> Vec<String> {
    let mut heads: Vec<String> = doc.get_heads().iter().map(|h| h.to_string()).collect();
    heads.sort();
    heads
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_default()
}

fn set_difference(what: &str, phone: &BTreeSet<String>, server: &BTreeSet<String>) -> String {
    let missing: Vec<&String> = server.difference(phone).collect();
    let extra: Vec<&String> = phone.difference(server).collect();
    format!(
        "{what}: {} on the server but not on the phone {missing:?}, {} on the phone but not on the server {extra:?}",
        missing.len(),
        extra.len()
    )
}

impl Simulation {
    pub(super) fn finish_figures(&mut self) -> anyhow::Result<()> {
        let f = &mut self.figures;
        f.edits = self.phones.iter().map(|p| p.edits).sum();
        f.edits_by_kind.clear();
        for p in &self.phones {
            for (k, n) in &p.by_kind {
                *f.edits_by_kind.entry(k).or_default() += n;
            }
        }
        f.visits = self.ledger.visits.len();
        f.hazards = self.ledger.hazards.len();
        f.photos = self.ledger.photos.len();
        f.photo_bytes = self.ledger.photos.values().sum();
        f.store_bytes = 0;
        for p in &self.phones {
            for name in ["inspect.db", "inspect.db-wal"] {
                f.store_bytes += std::fs::metadata(p.dir.join(name)).map_or(0, |m| m.len());
            }
        }
        let mut times: Vec<f64> = self
            .phones
            .iter()
            .flat_map(|p| p.sync_times.iter().map(|d| d.as_secs_f64() * 1000.0))
            .collect();
        times.sort_by(f64::total_cmp);
        f.sync_calls = times.len();
        f.sync_p50_ms = pct(&times, 0.5);
        f.sync_p90_ms = pct(&times, 0.9);
        f.sync_max_ms = times.last().copied().unwrap_or(0.0);
        f.states.clear();
        for h in &self.ledger.hazards {
            let state = self.phones[h.phone]
                .client()?
                .get_hazard(h.id.clone())?
                .state;
            *f.states.entry(state.as_str().to_owned()).or_default() += 1;
        }
        Ok(())
    }

    fn get(&self, token: &str, path: &str) -> anyhow::Result<(u16, Value)> {
        self.rt.block_on(async {
            let r = self
                .http
                .get(format!("{}{path}", self.target.base))
                .bearer_auth(token)
                .send()
                .await
                .with_context(|| format!("GET {path}"))?;
            let status = r.status().as_u16();
            Ok((status, r.json().await.unwrap_or(Value::Null)))
        })
    }

    fn web_login(&self, account: &Account) -> anyhow::Result<String> {
        self.rt.block_on(async {
            let body: Value = self
                .http
                .post(format!("{}/api/v1/auth/login", self.target.base))
                .json(&json!({"username": account.username, "password": account.password}))
                .send()
                .await?
                .json()
                .await?;
            body["access_token"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("web login of {} failed: {body}", account.username))
        })
    }

    /// Ids of every hazard (`/api/v1/hazards`, paged) or visit (`/api/v1/visits`) the user sees.
    fn server_ids(&self, token: &str, what: &str) -> anyhow::Result<Option<BTreeSet<String>>> {
        let mut ids = BTreeSet::new();
        let mut offset = 0;
        loop {
            let path = if what == "hazards" {
                format!("/api/v1/hazards?limit=1000&offset={offset}")
            } else {
                "/api/v1/visits?limit=1000".to_owned()
            };
            let (status, body) = self.get(token, &path)?;
            if status != 200 {
                bail!("GET {path}: {status} {body}");
            }
            let rows = body.as_array().cloned().unwrap_or_default();
            ids.extend(rows.iter().map(|r| str_of(r, "id").to_owned()));
            if rows.len() < 1000 {
                return Ok(Some(ids));
            }
            if what != "hazards" {
                // The visit list has no paging: a larger set cannot be compared whole.
                return Ok(None);
            }
            offset += 1000;
        }
    }

    /// Checks that every phone and the server converged and that nothing was lost:
    ///
    /// - no phone has unacknowledged changes, refused documents or photos to upload;
    /// - each phone holds exactly the hazards and visits its user may see on the server;
    /// - each document on a phone equals the server's: the same Automerge heads as the hub's
    ///   copy (in-process server), and field by field the same as the JSON API shows;
    /// - every visit, hazard, checklist line, event and photo the phones made is on the server
    ///   and on every phone that may see it; each hazard is in the state its history implies,
    ///   and each edited field holds one of the values last written to it.
    pub fn check(&self) -> CheckReport {
        let mut r = CheckReport::default();
        if let Err(e) = self.check_into(&mut r) {
            r.failures.push(format!("the check could not run: {e:#}"));
        }
        r
    }

    fn check_into(&self, r: &mut CheckReport) -> anyhow::Result<()> {
        let mut tokens: BTreeMap<&str, String> = BTreeMap::new();
        for p in &self.phones {
            if !tokens.contains_key(p.account.username.as_str()) {
                tokens.insert(&p.account.username, self.web_login(&p.account)?);
            }
        }
        for p in &self.phones {
            let c = p.client()?;
            let token = &tokens[p.account.username.as_str()];
            let pending = c.store().pending()?;
            r.expect(pending.is_empty(), || {
                format!(
                    "{}: {} document(s) with changes the server has not acknowledged",
                    p.name,
                    pending.len()
                )
            });
            let queued = c.pending_photos()?;
            r.expect(queued == 0, || {
                format!("{}: {queued} photo(s) not uploaded", p.name)
            });
            let rows = c.store().summaries(None, None)?;
            for row in rows.iter().filter(|row| row.refused) {
                r.expect(false, || {
                    format!("{}: {} {} refused", p.name, row.kind, row.id)
                });
            }
            let ids = |kind: &str| -> BTreeSet<String> {
                rows.iter()
                    .filter(|row| row.kind == kind)
                    .map(|row| row.id.clone())
                    .collect()
            };
            for kind in ["hazard", "visit"] {
                if let Some(server) = self.server_ids(token, &format!("{kind}s"))? {
                    let phone = ids(kind);
                    r.expect(phone == server, || {
                        set_difference(&format!("{}: {kind}s", p.name), &phone, &server)
                    });
                }
            }
            for row in &rows {
                let uid = uuid::Uuid::parse_str(&row.id)?;
                if let Some(server) = &self.target.server {
                    let ours = c.store().load_doc(uid)?.map(|d| sorted_heads(&d));
                    let theirs = server
                        .runtime
                        .block_on(server.state.hub.load(uid))
                        .map_err(|e| anyhow!("hub load {uid}: {e}"))?
                        .map(|d| sorted_heads(&d));
                    r.eq(
                        &format!("{}: heads of {} {}", p.name, row.kind, row.id),
                        &ours,
                        &theirs,
                    );
                }
                match row.kind.as_str() {
                    "hazard" => self.compare_hazard(r, p, token, &row.id)?,
                    "visit" => self.compare_visit(r, p, token, &row.id)?,
                    _ => {}
                }
            }
        }
        self.check_ledger(r, &tokens)
    }

    fn compare_hazard(
        &self,
        r: &mut CheckReport,
        p: &Phone,
        token: &str,
        id: &str,
    ) -> anyhow::Result<()> {
        let rec = p.client()?.get_hazard(id.to_owned())?;
        let (status, d) = self.get(token, &format!("/api/v1/hazards/{id}"))?;
        r.expect(status == 200, || {
            format!(
                "{}: hazard {id} answers {status} on the server for its user",
                p.name
            )
        });
        if status != 200 {
            return Ok(());
        }
        let h = &d["hazard"];
        let what = |field: &str| format!("{}: hazard {id} {field}", p.name);
        for (field, ours) in [
            ("location", rec.location.as_str()),
            ("description", rec.description.as_str()),
            ("category", rec.category.as_str()),
            ("grade", rec.grade.as_str()),
            ("criterion", rec.criterion.as_str()),
            ("measure", rec.measure.as_str()),
            ("responsible_person", rec.responsible_person.as_str()),
            ("state", rec.state.as_str()),
        ] {
            r.eq(&what(field), &ours, &str_of(h, field));
        }
        r.eq(
            &what("deadline"),
            &rec.current_deadline.as_deref(),
            &h["deadline"].as_str(),
        );
        let photos: Vec<&str> = rec.photos.iter().map(|x| x.sha256.as_str()).collect();
        let server_photos: Vec<&str> = d["photos"]
            .as_array()
            .map(|a| a.iter().map(|x| str_of(x, "sha256")).collect())
            .unwrap_or_default();
        r.eq(&what("photos"), &photos, &server_photos);
        let events: BTreeMap<&str, Option<&str>> = rec
            .events
            .iter()
            .map(|e| (e.id.as_str(), e.ignored.as_deref()))
            .collect();
        let history: BTreeMap<&str, Option<&str>> = d["history"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| (str_of(e, "event_id"), e["ignored"].as_str()))
                    .collect()
            })
            .unwrap_or_default();
        r.eq(&what("events (id → why ignored)"), &events, &history);
        Ok(())
    }

    fn compare_visit(
        &self,
        r: &mut CheckReport,
        p: &Phone,
        token: &str,
        id: &str,
    ) -> anyhow::Result<()> {
        let v = p.client()?.get_visit(id.to_owned())?;
        let (status, d) = self.get(token, &format!("/api/v1/visits/{id}"))?;
        r.expect(status == 200, || {
            format!(
                "{}: visit {id} answers {status} on the server for its user",
                p.name
            )
        });
        if status != 200 {
            return Ok(());
        }
        let row = &d["visit"];
        let what = |field: &str| format!("{}: visit {id} {field}", p.name);
        r.eq(&what("place"), &v.place.as_str(), &str_of(row, "place"));
        let inspectors: Vec<&str> = row["inspectors"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        r.eq(
            &what("inspectors"),
            &v.inspectors.iter().map(String::as_str).collect::<Vec<_>>(),
            &inspectors,
        );
        r.eq(
            &what("checklist_total"),
            &Some(v.checklist.len() as i64),
            &row["checklist_total"].as_i64(),
        );
        let failed = v
            .checklist
            .iter()
            .filter(|c| c.result == CheckResultRecord::Fail)
            .count() as i64;
        r.eq(
            &what("checklist_failed"),
            &Some(failed),
            &row["checklist_failed"].as_i64(),
        );
        r.eq(
            &what("signed_by"),
            &v.signature.as_ref().map(|s| s.signer_name.as_str()),
            &row["signed_by"].as_str(),
        );
        Ok(())
    }

    /// Whether phone `p` may see a document of `enterprise` made by a phone of `creator_org`.
    fn may_see(p: &Phone, creator_org: &str, enterprise: &str) -> bool {
        match p.account.role {
            PhoneRole::Inspector => p.org() == creator_org,
            PhoneRole::Manager => p.org() == enterprise,
        }
    }

    fn check_ledger(
        &self,
        r: &mut CheckReport,
        tokens: &BTreeMap<&str, String>,
    ) -> anyhow::Result<()> {
        for h in &self.ledger.hazards {
            let creator = &self.phones[h.phone];
            let token = &tokens[creator.account.username.as_str()];
            let (status, d) = self.get(token, &format!("/api/v1/hazards/{}", h.id))?;
            r.expect(status == 200, || {
                format!(
                    "hazard {} recorded by {} is not on the server ({status})",
                    h.id, creator.name
                )
            });
            if status != 200 {
                continue;
            }
            let history = d["history"].as_array().map_or(0, Vec::len);
            r.expect(history == h.events.len(), || {
                format!(
                    "hazard {}: {history} events on the server, {} recorded by the phones",
                    h.id,
                    h.events.len()
                )
            });
            let state = str_of(&d["hazard"], "state");
            let expected = h.expected_states();
            r.expect(expected.contains(state), || {
                format!(
                    "hazard {}: state {state} on the server, expected one of {expected:?} after {:?}",
                    h.id, h.events
                )
            });
            for (field, writes) in &h.writes {
                let last = writes.iter().map(|(phase, _)| *phase).max();
                let allowed: BTreeSet<&str> = writes
                    .iter()
                    .filter(|(phase, _)| Some(*phase) == last)
                    .map(|(_, v)| v.as_str())
                    .collect();
                let value = str_of(&d["hazard"], field);
                r.expect(allowed.contains(value), || {
                    format!(
                        "hazard {} {field}: {value:?} on the server, last written {allowed:?}",
                        h.id
                    )
                });
            }
            let photos: BTreeSet<&str> = d["photos"]
                .as_array()
                .map(|a| a.iter().map(|x| str_of(x, "sha256")).collect())
                .unwrap_or_default();
            for sha in &h.photos {
                r.expect(photos.contains(sha.as_str()), || {
                    format!("hazard {}: photo {sha} missing on the server", h.id)
                });
            }
            let uid = uuid::Uuid::parse_str(&h.id)?;
            for p in &self.phones {
                if Self::may_see(p, creator.org(), &h.enterprise) {
                    let held = p.client()?.store().doc_state(uid)?.is_some();
                    r.expect(held, || format!("{}: hazard {} missing", p.name, h.id));
                }
            }
        }
        for v in &self.ledger.visits {
            let creator = &self.phones[v.phone];
            let token = &tokens[creator.account.username.as_str()];
            let (status, d) = self.get(token, &format!("/api/v1/visits/{}", v.id))?;
            r.expect(status == 200, || {
                format!(
                    "visit {} started by {} is not on the server ({status})",
                    v.id, creator.name
                )
            });
            if status == 200 {
                let total = d["visit"]["checklist_total"].as_i64();
                r.expect(total == Some(v.checklist.len() as i64), || {
                    format!(
                        "visit {}: {total:?} checklist lines on the server, {} added by the phones",
                        v.id,
                        v.checklist.len()
                    )
                });
            }
            let uid = uuid::Uuid::parse_str(&v.id)?;
            for p in &self.phones {
                if !Self::may_see(p, creator.org(), &v.enterprise) {
                    continue;
                }
                if p.client()?.store().doc_state(uid)?.is_none() {
                    r.expect(false, || format!("{}: visit {} missing", p.name, v.id));
                    continue;
                }
                let lines: BTreeSet<String> = p
                    .client()?
                    .get_visit(v.id.clone())?
                    .checklist
                    .into_iter()
                    .map(|c| c.id)
                    .collect();
                r.expect(v.checklist.is_subset(&lines), || {
                    format!("{}: visit {} lost checklist lines", p.name, v.id)
                });
            }
        }
        let token = self
            .phones
            .first()
            .map(|p| tokens[p.account.username.as_str()].clone())
            .unwrap_or_default();
        for (sha, size) in &self.ledger.photos {
            let (status, d) = self.get(&token, &format!("/api/v1/photos/{sha}/status"))?;
            r.expect(
                status == 200 && d["complete"] == true && d["size"].as_u64() == Some(*size),
                || format!("photo {sha} ({size} bytes) not stored on the server: {status} {d}"),
            );
        }
        Ok(())
    }
}
