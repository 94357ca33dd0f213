// The field, played through the generated Kotlin bindings on the JVM against the real server
// binary, as an Android app would call the SDK: two inspectors edit one visit and hazard offline
// and converge, the enterprise manager signs for it and submits evidence, a third inspector
// verifies and closes offline and syncs later; then logout, a second user on the same phone,
// hostile files from the gallery, and the typed errors an app reads.
//
// Run by `mobile-bridge/scripts/test-kotlin.sh`, which seeds and starts the server and passes:
//   <server base URL> <enterprise id> <scratch directory>

import java.io.File
import java.util.zip.CRC32
import java.util.zip.Deflater
import uniffi.mobile_bridge.*

const val PASSWORD = "correct horse battery"

lateinit var base: String
lateinit var enterprise: String
lateinit var scratch: File

fun phone(name: String, user: String): InspectionClient {
    val c = InspectionClient(File(scratch, name).path, base)
    if (c.currentUser() == null) c.login(user, PASSWORD, "$user 的手机", "android")
    return c
}

fun hazardInput(description: String = "配电箱未上锁") = HazardInput(
    location = "一号车间配电箱",
    description = description,
    category = "electrical",
    grade = GradeRecord.GENERAL,
    criterion = "",
    measure = "加锁",
    deadline = "2030-06-30",
    responsiblePerson = "",
)

/** A small RGB PNG, written with the JDK alone. */
fun png(width: Int, height: Int, seed: Int = 0): ByteArray {
    val raw = java.io.ByteArrayOutputStream()
    for (y in 0 until height) {
        raw.write(0)
        for (x in 0 until width) repeat(3) { raw.write((x * 7 + y * 3 + seed) % 256) }
    }
    val deflater = Deflater()
    deflater.setInput(raw.toByteArray())
    deflater.finish()
    val buf = ByteArray(raw.size() + 1024)
    val n = deflater.deflate(buf)
    fun chunk(kind: String, data: ByteArray): ByteArray {
        val out = java.io.ByteArrayOutputStream()
        val k = kind.toByteArray()
        out.write(java.nio.ByteBuffer.allocate(4).putInt(data.size).array())
        out.write(k)
        out.write(data)
        val crc = CRC32()
        crc.update(k)
        crc.update(data)
        out.write(java.nio.ByteBuffer.allocate(4).putInt(crc.value.toInt()).array())
        return out.toByteArray()
    }
    val header = java.nio.ByteBuffer.allocate(13).putInt(width).putInt(height)
        .put(8).put(2).put(0).put(0).put(0).array()
    return byteArrayOf(0x89.toByte(), 'P'.code.toByte(), 'N'.code.toByte(), 'G'.code.toByte(), 13, 10, 26, 10) +
        chunk("IHDR", header) + chunk("IDAT", buf.copyOf(n)) + chunk("IEND", ByteArray(0))
}

fun file(name: String, bytes: ByteArray): String {
    val f = File(scratch, name)
    f.writeBytes(bytes)
    return f.path
}

inline fun <reified E : Throwable> expect(what: String, block: () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) return e
        throw AssertionError("$what: expected ${E::class.simpleName}, got $e", e)
    }
    throw AssertionError("$what: expected ${E::class.simpleName}, nothing was thrown")
}

fun syncAll(vararg clients: InspectionClient) {
    repeat(2) { clients.forEach { it.syncNow() } }
}

fun theFieldConvergesOnAClosedHazard() {
    val a = phone("phone-a", "inspector")
    val b = phone("phone-b", "inspector2")
    check(a.listEnterprises().map { it.id } == listOf(enterprise)) { "enterprises" }
    val changed = mutableListOf<String>()
    val handle = b.addListener(object : ChangeListener {
        override fun onChange(docIds: List<String>) {
            synchronized(changed) { changed.addAll(docIds) }
        }
    })
    check(a.currentUser()!!.role == RoleRecord.INSPECTOR) { "typed role" }
    check(hazardCategories().any { it.code == "electrical" && it.nameZh == "电气安全" }) { "categories" }
    val visit = a.startVisit(enterprise, VisitKindRecord.ROUTINE, "一号车间")
    val hazard = a.addHazard(visit, hazardInput())
    val listed = a.listVisits(null).single { it.id == visit }
    check(listed.place == "一号车间" && listed.hazards == 1u && listed.itemState == ItemState.Pending) { "$listed" }
    val colleague = a.colleagues().single { it.username == "inspector2" }
    check(colleague.role == RoleRecord.INSPECTOR && colleague.id == b.currentUser()!!.id) { "$colleague" }
    a.editVisit(visit, VisitPatch(addInspectors = listOf(colleague.id)))
    val report = a.syncNow()
    check(report.refused.isEmpty() && report.sent == 2u) { "first sync: $report" }
    check(report.bytesDown * 10uL <= report.bytesUp) { "nothing sent comes back: $report" }
    check(a.itemState(hazard) == ItemState.Synced) { "synced" }
    b.syncNow()
    check(synchronized(changed) { hazard in changed }) { "the listener heard of the hazard" }
    check(b.getHazard(hazard).description == "配电箱未上锁")

    // Offline, both edit the same visit and hazard.
    a.editVisit(visit, VisitPatch(notes = "现场有焊接作业"))
    a.editHazard(hazard, HazardPatch(measure = "加锁并张贴警示标识"))
    b.setChecklistItem(visit, ChecklistItemRecord("", "配电箱门锁", CheckResultRecord.FAIL, "未上锁"))
    b.editHazard(hazard, HazardPatch(responsiblePerson = "王厂长", location = "一号车间东侧配电箱"))
    val original = png(64, 48)
    val photo = b.attachPhoto(hazard, file("hazard.png", original))
    val sha = java.security.MessageDigest.getInstance("SHA-256").digest(original)
        .joinToString("") { "%02x".format(it) }
    check(photo.originalSha256 == sha && photo.sha256 != sha) { "original kept beside the copy" }
    check(b.itemState(hazard) == ItemState.Pending)
    syncAll(a, b)
    for (c in listOf(a, b)) {
        val h = c.getHazard(hazard)
        check(h.measure == "加锁并张贴警示标识" && h.responsiblePerson == "王厂长") { "$h" }
        check(h.location == "一号车间东侧配电箱") { h.location }
        check(h.photos.map { it.sha256 } == listOf(photo.sha256)) { "photos" }
        val v = c.getVisit(visit)
        check(v.notes == "现场有焊接作业" && v.checklist.map { it.title } == listOf("配电箱门锁")) { "$v" }
    }
    handle.cancel()
    a.notify(hazard)
    a.syncNow()

    // The manager may not verify; signs for the notice and submits evidence.
    val m = phone("phone-m", "manager")
    m.syncNow()
    check(m.openHazards(null).map { it.id } == listOf(hazard)) { "the manager's open hazards" }
    val refused = expect<BridgeException.Refused>("a manager verifying") { m.verify(hazard, true, "自己验收") }
    check(refused.reason.isNotBlank())
    // What an app logs or shows by default is the Rust text, Chinese first.
    check(refused.toString().startsWith("操作不被允许 / not allowed: ")) { refused.toString() }
    m.signFor(hazard, "王厂长")
    m.submitRectification(hazard, "已加锁并张贴标识", listOf(file("evidence.png", png(80, 60, 9))))
    check(m.syncNow().refused.isEmpty())
    // The inspector's inbox shows the submission, labelled Chinese first.
    val inbox = a.fetchInbox(null, 50u)
    val submitted = inbox.filter { it.hazardId == hazard && it.kind == "hazard.rectification_submitted" }
    check(submitted.size == 1 && submitted[0].label.startsWith("提交整改 / ")) { "$inbox" }
    check(a.fetchInbox(inbox.maxOf { it.receivedAtMs }, 50u).isEmpty()) { "nothing newer" }

    // A third inspector verifies and closes offline, then syncs on the same data directory.
    val c = phone("phone-c", "inspector3")
    c.syncNow()
    check(c.getHazard(hazard).state == HazardStateRecord.SUBMITTED)
    c.destroy()
    val offline = InspectionClient(File(scratch, "phone-c").path, "http://127.0.0.1:9")
    offline.verify(hazard, true, "复查合格")
    offline.close(hazard, "销号")
    expect<BridgeException.Network>("a sync with no server") { offline.syncNow() }
    check(offline.itemState(hazard) == ItemState.Pending)
    offline.destroy()
    val back = InspectionClient(File(scratch, "phone-c").path, base)
    check(back.syncNow().refused.isEmpty())
    syncAll(a, b, m, back)
    for (p in listOf(a, b, m, back)) {
        val h = p.getHazard(hazard)
        check(h.state == HazardStateRecord.CLOSED) { "${h.state}" }
        check(h.events.map { it.kind } == listOf(
            EventKindRecord.NOTIFIED, EventKindRecord.SIGNED_FOR, EventKindRecord.RECTIFICATION_SUBMITTED,
            EventKindRecord.VERIFIED, EventKindRecord.CLOSED,
        )) {
            "${h.events.map { it.kind }}"
        }
        check(p.openHazards(null).isEmpty())
    }
}

fun backgroundSyncReportsToItsObserver() {
    val a = phone("phone-auto", "inspector")
    a.listEnterprises()
    val visit = a.startVisit(enterprise, VisitKindRecord.ROUTINE, "锅炉房")
    a.addHazard(visit, hazardInput("锅炉压力表过期"))
    val seen = java.util.concurrent.LinkedBlockingQueue<String>()
    val handle = a.startAutoSyncObserved(1u, object : SyncObserver {
        override fun onStarted() { seen.add("started") }
        override fun onFinished(report: SyncReport) { seen.add("finished ${report.sent}") }
        override fun onFailed(failure: SyncFailure, message: String) { seen.add("failed $failure") }
    })
    val events = mutableListOf<String>()
    val until = System.nanoTime() + 30_000_000_000L
    while ("finished 2" !in events) {
        check(System.nanoTime() < until) { "no background sync reported: $events" }
        seen.poll(100, java.util.concurrent.TimeUnit.MILLISECONDS)?.let { events.add(it) }
    }
    handle.cancel()
    check(events.first() == "started") { "$events" }
    check(a.unsyncedWork().documents == 0u)
}

fun afterLogoutNothingIsRecordedAndAnotherUserStartsClean() {
    val a = phone("phone-shared", "inspector")
    a.listEnterprises()
    val visit = a.startVisit(enterprise, VisitKindRecord.ROUTINE, "仓库")
    val unsent = a.addHazard(visit, hazardInput("仓库灭火器过期"))
    a.logout()
    expect<BridgeException.Unauthorized>("an edit after logout") { a.addHazard(visit, hazardInput()) }
    val refused = expect<BridgeException.Refused>("another user while work is unsynced") {
        a.login("inspector2", PASSWORD, "共用手机", "android")
    }
    check("2 份记录" in refused.reason) { refused.reason }
    val work = a.unsyncedWork()
    check(work.documents == 2u && work.photos == 0u) { "$work" }
    expect<BridgeException.Refused>("a count that was not shown") { a.discardUnsyncedWork(0u, 0u) }
    a.discardUnsyncedWork(2u, 0u)
    check(a.login("inspector2", PASSWORD, "共用手机", "android").username == "inspector2")
    a.syncNow()
    expect<BridgeException.NotFound>("the first user's unsent hazard") { a.getHazard(unsent) }
}

fun hostileFilesAreRefusedAsInvalidInput() {
    val a = phone("phone-hostile", "inspector")
    a.listEnterprises()
    val visit = a.startVisit(enterprise, VisitKindRecord.ROUTINE, "车间")
    val hazard = a.addHazard(visit, hazardInput())
    // A JPEG frame header claiming 60000 x 60000.
    val giant = byteArrayOf(
        0xFF.toByte(), 0xD8.toByte(), 0xFF.toByte(), 0xC0.toByte(), 0, 17, 8,
        0xEA.toByte(), 0x60, 0xEA.toByte(), 0x60, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1,
        0xFF.toByte(), 0xD9.toByte(),
    )
    val good = png(64, 48, 5)
    for ((name, bytes) in listOf(
        "giant.jpg" to giant,
        "cut.png" to good.copyOf(good.size / 2),
        "page.jpg" to "<!DOCTYPE html><html></html>".toByteArray(),
    )) {
        val started = System.nanoTime()
        val e = expect<BridgeException.InvalidInput>(name) { a.attachPhoto(hazard, file(name, bytes)) }
        check(e.field == "photo" && e.detail.isNotBlank()) { "$name: ${e.field} ${e.detail}" }
        check(System.nanoTime() - started < 1_000_000_000L) { "$name took over a second" }
    }
    check(a.getHazard(hazard).photos.isEmpty())
    // An id that is not an id is the caller's mistake, not a storage failure.
    val bad = expect<BridgeException.InvalidInput>("a malformed id") { a.getHazard("not-an-id") }
    check(bad.field == "id") { bad.field }
}

fun main(args: Array<String>) {
    base = args[0]
    enterprise = args[1]
    scratch = File(args[2]).also { it.mkdirs() }
    val tests = listOf(
        "the field converges on a closed hazard" to ::theFieldConvergesOnAClosedHazard,
        "background sync reports to its observer" to ::backgroundSyncReportsToItsObserver,
        "after logout nothing is recorded and another user starts clean" to ::afterLogoutNothingIsRecordedAndAnotherUserStartsClean,
        "hostile files are refused as invalid input" to ::hostileFilesAreRefusedAsInvalidInput,
    )
    var failed = 0
    for ((name, test) in tests) {
        try {
            test()
            println("ok   $name")
        } catch (e: Throwable) {
            failed++
            println("FAIL $name: $e")
            e.printStackTrace()
        }
    }
    println("${tests.size - failed} passed, $failed failed")
    if (failed > 0) kotlin.system.exitProcess(1)
}
