/* The ingest's loops over whole blocks, without the GIL: its hashes (see ledger/hashing.py) and
 * the framing of event states as binary COPY rows (see ledger/store.py, frame_states).
 *
 * Python's hashlib costs ~1 us a call on this machine for a few hundred bytes, most of it the
 * call and OpenSSL's context, not the hash, and it holds the GIL while the other thread of the
 * ingest waits for it; DuckDB's SHA-256 does not use the CPU's SHA instructions. Here each loop
 * is one call that releases the GIL; the hash is OpenSSL's, as hashlib's is. ledger/hashing.py
 * holds the same loops in Python, the reference the tests compare these to.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE /* memmem */
#define OPENSSL_SUPPRESS_DEPRECATED /* SHA256_Init & co.: the fastest path for short inputs */
#include <Python.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <string.h>

static const char HEX[] = "0123456789abcdef";

/* The hex of bytes[0:count] at out[0:2 * count]. */
static void hex(const unsigned char *bytes, int count, unsigned char *out)
{
    for (int j = 0; j < count; j++) {
        out[2 * j] = (unsigned char)HEX[bytes[j] >> 4];
        out[2 * j + 1] = (unsigned char)HEX[bytes[j] & 15];
    }
}

/* The SHA-256 of data[0:size] in md. OpenSSL 3's one-shot SHA256() looks the algorithm up at
 * every call; the low-level functions do not. */
static void sha256(const unsigned char *data, size_t size, unsigned char *md)
{
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, data, size);
    SHA256_Final(md, &ctx);
}

/* The offsets as int64 values; NULL with an exception set if the buffer is not a whole count. */
static const int64_t *offsets(Py_buffer *buf, Py_ssize_t *count, const char *name)
{
    if (buf->len % (Py_ssize_t)sizeof(int64_t) != 0) {
        PyErr_Format(PyExc_ValueError, "%s: not a whole number of int64 values", name);
        return NULL;
    }
    *count = buf->len / (Py_ssize_t)sizeof(int64_t);
    return (const int64_t *)buf->buf;
}

/* Whether every span [starts[i], ends[i]) plus `after` bytes past its end lies in `size`. */
static int spans_fit(const int64_t *starts, const int64_t *ends, Py_ssize_t count,
                     int64_t after, Py_ssize_t size)
{
    for (Py_ssize_t i = 0; i < count; i++) {
        if (starts[i] < 0 || ends[i] < starts[i] || ends[i] > (int64_t)size - after) {
            PyErr_Format(PyExc_ValueError, "span %zd [%lld, %lld) + %lld outside %zd bytes", i,
                         (long long)starts[i], (long long)ends[i], (long long)after, size);
            return 0;
        }
    }
    return 1;
}

PyDoc_STRVAR(fill_hex_doc,
"fill_hex_digests(rows, starts, ends, gap)\n--\n\n"
"Write the hex SHA-256 of each rows[starts[i]:ends[i]] at rows[ends[i] + gap:][:64].");

static PyObject *fill_hex_digests(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer rows, starts_buf, ends_buf;
    Py_ssize_t gap, count, ends_count;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "w*y*y*n", &rows, &starts_buf, &ends_buf, &gap))
        return NULL;
    const int64_t *starts = offsets(&starts_buf, &count, "starts");
    const int64_t *ends = starts ? offsets(&ends_buf, &ends_count, "ends") : NULL;
    if (ends && ends_count != count)
        PyErr_SetString(PyExc_ValueError, "starts and ends differ in length");
    else if (ends && gap < 0)
        PyErr_SetString(PyExc_ValueError, "gap is negative");
    else if (ends && spans_fit(starts, ends, count, (int64_t)gap + 64, rows.len)) {
        unsigned char *data = rows.buf;
        Py_BEGIN_ALLOW_THREADS
        unsigned char md[SHA256_DIGEST_LENGTH];
        for (Py_ssize_t i = 0; i < count; i++) {
            sha256(data + starts[i], (size_t)(ends[i] - starts[i]), md);
            hex(md, SHA256_DIGEST_LENGTH, data + ends[i] + gap);
        }
        Py_END_ALLOW_THREADS
        result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&ends_buf);
    PyBuffer_Release(&starts_buf);
    PyBuffer_Release(&rows);
    return result;
}

PyDoc_STRVAR(chain_links_doc,
"chain_links(link, heads, field, rows, starts, ends)\n--\n\n"
"The chain's next links, one after the other (32 bytes each): link i is the SHA-256 of link\n"
"i-1 (``link`` before the first), heads[i] (its share of ``heads``), ``field``, then the\n"
"SHA-256 of rows[starts[i]:ends[i]].");

static PyObject *chain_links(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer link, heads, field, rows, starts_buf, ends_buf;
    Py_ssize_t count, ends_count;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*", &link, &heads, &field, &rows, &starts_buf,
                          &ends_buf))
        return NULL;
    const int64_t *starts = offsets(&starts_buf, &count, "starts");
    const int64_t *ends = starts ? offsets(&ends_buf, &ends_count, "ends") : NULL;
    if (!ends)
        ;
    else if (ends_count != count)
        PyErr_SetString(PyExc_ValueError, "starts and ends differ in length");
    else if (link.len != SHA256_DIGEST_LENGTH)
        PyErr_SetString(PyExc_ValueError, "link is not 32 bytes");
    else if (count == 0 ? heads.len != 0 : heads.len % count != 0)
        PyErr_SetString(PyExc_ValueError, "heads is not one head per span");
    else if (spans_fit(starts, ends, count, 0, rows.len)) {
        result = PyBytes_FromStringAndSize(NULL, count * SHA256_DIGEST_LENGTH);
        if (result) {
            unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
            const unsigned char *data = rows.buf, *head = heads.buf;
            Py_ssize_t width = count ? heads.len / count : 0;
            Py_BEGIN_ALLOW_THREADS
            const unsigned char *previous = link.buf;
            unsigned char state[SHA256_DIGEST_LENGTH];
            SHA256_CTX ctx;
            for (Py_ssize_t i = 0; i < count; i++) {
                sha256(data + starts[i], (size_t)(ends[i] - starts[i]), state);
                SHA256_Init(&ctx);
                SHA256_Update(&ctx, previous, SHA256_DIGEST_LENGTH);
                SHA256_Update(&ctx, head + i * width, (size_t)width);
                SHA256_Update(&ctx, field.buf, (size_t)field.len);
                SHA256_Update(&ctx, state, SHA256_DIGEST_LENGTH);
                SHA256_Final(out, &ctx);
                previous = out;
                out += SHA256_DIGEST_LENGTH;
            }
            Py_END_ALLOW_THREADS
        }
    }
    PyBuffer_Release(&ends_buf);
    PyBuffer_Release(&starts_buf);
    PyBuffer_Release(&rows);
    PyBuffer_Release(&field);
    PyBuffer_Release(&heads);
    PyBuffer_Release(&link);
    return result;
}

PyDoc_STRVAR(fill_pseudonyms_doc,
"fill_pseudonyms(rows, starts, ends, marker, width, patients, patient_ends, ipad, opad)\n--\n\n"
"In each rows[starts[i]:ends[i]], overwrite the ``width`` bytes after the first ``marker``\n"
"with the hex of the first width/2 bytes of HMAC-SHA256 of patient i (patients[patient_ends[i-1]:\n"
"patient_ends[i]]), the key given as its two 64-byte pads. A span without the marker and\n"
"room after it is refused, before anything is written.");

static PyObject *fill_pseudonyms(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer rows, starts_buf, ends_buf, marker, patients, patient_ends_buf, ipad, opad;
    Py_ssize_t width, count, ends_count, patients_count;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "w*y*y*y*ny*y*y*y*", &rows, &starts_buf, &ends_buf, &marker,
                          &width, &patients, &patient_ends_buf, &ipad, &opad))
        return NULL;
    const int64_t *starts = offsets(&starts_buf, &count, "starts");
    const int64_t *ends = starts ? offsets(&ends_buf, &ends_count, "ends") : NULL;
    const int64_t *patient_ends =
        ends ? offsets(&patient_ends_buf, &patients_count, "patient_ends") : NULL;
    unsigned char *data = rows.buf;
    if (!patient_ends)
        ;
    else if (ends_count != count || patients_count != count)
        PyErr_SetString(PyExc_ValueError, "starts, ends and patient_ends differ in length");
    else if (ipad.len != SHA256_CBLOCK || opad.len != SHA256_CBLOCK)
        PyErr_SetString(PyExc_ValueError, "the key's pads are not 64 bytes each");
    else if (width < 0 || width > 2 * SHA256_DIGEST_LENGTH || width % 2 || marker.len == 0)
        PyErr_SetString(PyExc_ValueError, "width or marker out of range");
    else if (spans_fit(starts, ends, count, 0, rows.len)
             && spans_fit(patient_ends, patient_ends, count, 0, patients.len)) {
        Py_ssize_t bad = -1;
        unsigned char **at = PyMem_Malloc((size_t)(count ? count : 1) * sizeof *at);
        if (!at)
            PyErr_NoMemory();
        for (Py_ssize_t i = 0; at && i < count && bad < 0; i++) {
            const unsigned char *found = memmem(data + starts[i], (size_t)(ends[i] - starts[i]),
                                                marker.buf, (size_t)marker.len);
            if (!found || found + marker.len + width > data + ends[i]
                    || patient_ends[i] < (i ? patient_ends[i - 1] : 0))
                bad = i;
            else
                at[i] = (unsigned char *)found + marker.len;
        }
        if (bad >= 0)
            PyErr_Format(PyExc_ValueError, "span %zd has no marker with room for the pseudonym, "
                         "or its patient ends before the one before", bad);
        else if (at) {
            const unsigned char *patient = patients.buf;
            Py_BEGIN_ALLOW_THREADS
            SHA256_CTX inner, outer, ctx;
            unsigned char md[SHA256_DIGEST_LENGTH];
            SHA256_Init(&inner);
            SHA256_Update(&inner, ipad.buf, SHA256_CBLOCK);
            SHA256_Init(&outer);
            SHA256_Update(&outer, opad.buf, SHA256_CBLOCK);
            int64_t from = 0;
            for (Py_ssize_t i = 0; i < count; i++) {
                ctx = inner;
                SHA256_Update(&ctx, patient + from, (size_t)(patient_ends[i] - from));
                SHA256_Final(md, &ctx);
                ctx = outer;
                SHA256_Update(&ctx, md, SHA256_DIGEST_LENGTH);
                SHA256_Final(md, &ctx);
                hex(md, (int)(width / 2), at[i]);
                from = patient_ends[i];
            }
            Py_END_ALLOW_THREADS
            result = Py_NewRef(Py_None);
        }
        PyMem_Free(at);
    }
    PyBuffer_Release(&opad);
    PyBuffer_Release(&ipad);
    PyBuffer_Release(&patient_ends_buf);
    PyBuffer_Release(&patients);
    PyBuffer_Release(&marker);
    PyBuffer_Release(&ends_buf);
    PyBuffer_Release(&starts_buf);
    PyBuffer_Release(&rows);
    return result;
}

PyDoc_STRVAR(fill_uuid5_doc,
"fill_uuid5(rows, at, prefix, names, name_ends)\n--\n\n"
"Write at rows[at[i]:][:16] the uuid5 bytes of name i (names[name_ends[i-1]:name_ends[i]]):\n"
"the first 16 bytes of SHA-1(prefix + name), version 5, RFC 4122 variant. ``prefix`` is the\n"
"namespace's 16 bytes, then what every name starts with.");

static PyObject *fill_uuid5(PyObject *Py_UNUSED(self), PyObject *args)
{
    Py_buffer rows, at_buf, prefix, names, name_ends_buf;
    Py_ssize_t count, names_count;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "w*y*y*y*y*", &rows, &at_buf, &prefix, &names, &name_ends_buf))
        return NULL;
    const int64_t *at = offsets(&at_buf, &count, "at");
    const int64_t *name_ends = at ? offsets(&name_ends_buf, &names_count, "name_ends") : NULL;
    int ordered = 1;
    for (Py_ssize_t i = 1; name_ends && i < names_count && ordered; i++)
        ordered = name_ends[i] >= name_ends[i - 1];
    if (!name_ends)
        ;
    else if (names_count != count)
        PyErr_SetString(PyExc_ValueError, "at and name_ends differ in length");
    else if (!ordered)
        PyErr_SetString(PyExc_ValueError, "a name ends before the one before");
    else if (spans_fit(at, at, count, 16, rows.len)
             && spans_fit(name_ends, name_ends, count, 0, names.len)) {
        unsigned char *data = rows.buf;
        const unsigned char *name = names.buf;
        Py_BEGIN_ALLOW_THREADS
        SHA_CTX base, ctx;
        unsigned char md[SHA_DIGEST_LENGTH];
        SHA1_Init(&base);
        SHA1_Update(&base, prefix.buf, (size_t)prefix.len);
        int64_t from = 0;
        for (Py_ssize_t i = 0; i < count; i++) {
            ctx = base;
            SHA1_Update(&ctx, name + from, (size_t)(name_ends[i] - from));
            SHA1_Final(md, &ctx);
            md[6] = (unsigned char)((md[6] & 0x0F) | 0x50);
            md[8] = (unsigned char)((md[8] & 0x3F) | 0x80);
            memcpy(data + at[i], md, 16);
            from = name_ends[i];
        }
        Py_END_ALLOW_THREADS
        result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&name_ends_buf);
    PyBuffer_Release(&names);
    PyBuffer_Release(&prefix);
    PyBuffer_Release(&at_buf);
    PyBuffer_Release(&rows);
    return result;
}

PyDoc_STRVAR(frame_rows_doc,
"frame_rows(states, before, after)\n--\n\n"
"For each state (a sequence of bytes-like objects), one after the other: ``before``, the\n"
"state's length (4 bytes, big-endian), the state, ``after``.");

static PyObject *frame_rows(PyObject *Py_UNUSED(self), PyObject *args)
{
    PyObject *sequence, *states, *result = NULL;
    Py_buffer before, after, *views = NULL;
    Py_ssize_t count = 0, held = 0, total = 0;
    if (!PyArg_ParseTuple(args, "Oy*y*", &sequence, &before, &after))
        return NULL;
    states = PySequence_Tuple(sequence);
    if (states) {
        count = PyTuple_GET_SIZE(states);
        views = PyMem_Malloc((size_t)(count ? count : 1) * sizeof *views);
        if (!views)
            PyErr_NoMemory();
    }
    /* Each state's buffer is held until the copy is done: none can move or be freed meanwhile. */
    for (; views && held < count; held++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(states, held), &views[held], PyBUF_SIMPLE) < 0)
            break;
        if (views[held].len > INT32_MAX) {
            PyErr_Format(PyExc_ValueError, "state %zd is too long", held);
            PyBuffer_Release(&views[held]);
            break;
        }
        total += before.len + 4 + views[held].len + after.len;
    }
    if (views && held == count)
        result = PyByteArray_FromStringAndSize(NULL, total);
    if (result) {
        unsigned char *out = (unsigned char *)PyByteArray_AS_STRING(result);
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < count; i++) {
            uint32_t size = (uint32_t)views[i].len;
            memcpy(out, before.buf, (size_t)before.len);
            out += before.len;
            out[0] = (unsigned char)(size >> 24);
            out[1] = (unsigned char)(size >> 16);
            out[2] = (unsigned char)(size >> 8);
            out[3] = (unsigned char)size;
            memcpy(out + 4, views[i].buf, size);
            out += 4 + size;
            memcpy(out, after.buf, (size_t)after.len);
            out += after.len;
        }
        Py_END_ALLOW_THREADS
    }
    for (Py_ssize_t i = 0; i < held; i++)
        PyBuffer_Release(&views[i]);
    PyMem_Free(views);
    Py_XDECREF(states);
    PyBuffer_Release(&after);
    PyBuffer_Release(&before);
    return result;
}

static PyMethodDef methods[] = {
    {"fill_hex_digests", fill_hex_digests, METH_VARARGS, fill_hex_doc},
    {"chain_links", chain_links, METH_VARARGS, chain_links_doc},
    {"fill_pseudonyms", fill_pseudonyms, METH_VARARGS, fill_pseudonyms_doc},
    {"fill_uuid5", fill_uuid5, METH_VARARGS, fill_uuid5_doc},
    {"frame_rows", frame_rows, METH_VARARGS, frame_rows_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "ledger._blocks",
    "Loops over whole blocks, without the GIL (see ledger/hashing.py and ledger/store.py).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__blocks(void) { return PyModule_Create(&module); }
