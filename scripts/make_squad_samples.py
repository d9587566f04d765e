"""Writes data/samples/squad/* : small SQuAD-layout fixtures with text written for dicenlp (not from any dataset)."""
import hashlib, json, pathlib, sys

root = pathlib.Path(sys.argv[1])

def qa(context, question, answers, qid, impossible=False, plausible=None):
    out = {"id": qid, "question": question, "answers": []}
    for text, occurrence in answers:
        start = -1
        for _ in range(occurrence + 1):
            start = context.index(text, start + 1)
        out["answers"].append({"text": text, "answer_start": start})
    if impossible is not None and (impossible or plausible is not None or "v2" in qid):
        out["is_impossible"] = impossible
    if plausible:
        out["plausible_answers"] = [{"text": plausible, "answer_start": context.index(plausible)}]
    return out

P = [
 ("Harbour Lighthouse", "The harbour lighthouse of Kessling was built in 1862 by the engineer Mara Vollen. It stands 31 metres tall on a granite ledge at the northern end of the bay. The lamp was first fuelled with whale oil, then with paraffin from 1890, and it was converted to electricity in 1954. Today the tower is a museum, and visitors climb 212 steps to reach the gallery."),
 ("Harbour Lighthouse", "During the storm of 1907 the keeper, Tomas Brek, kept the light burning for three nights without sleep. Two fishing boats that had lost their masts found the harbour by its beam. The town council later gave Brek a silver watch, which is displayed in the museum next to his logbook."),
 ("River Alsen", "The Alsen is a river of about 140 kilometres that rises in the Tarn hills and flows east into Lake Orvo. Its largest tributary is the Mell, which joins it near the market town of Dessa. In the nineteenth century the lower river was straightened to allow barges to carry timber and grain to the lake ports. A cycle path now follows the old towpath from Dessa to the lake shore, and in summer the river is popular with canoeists, although the weir at Holm must be carried around on foot."),
 ("Glass Making", "Glass is made by melting sand, soda ash and limestone at about 1500 degrees Celsius. Soda ash lowers the melting point of the sand, and limestone makes the finished glass resistant to water. Coloured glass gets its colour from small amounts of metal oxides: cobalt gives blue, chromium gives green and gold gives a deep red."),
 ("Glass Making", "The float process, introduced in the 1950s, pours molten glass onto a bath of liquid tin. The glass spreads into a flat, even sheet because it is lighter than the tin. Almost all window glass is now made this way."),
]

def sid(i): return hashlib.sha1(f"dicenlp-sample-{i}".encode()).hexdigest()[:24]

def article(title, paragraphs):
    return {"title": title, "paragraphs": paragraphs}

v1_train = {"version": "1.1", "data": [
 article("Harbour_Lighthouse", [
  {"context": P[0][1], "qas": [
    qa(P[0][1], "Who built the harbour lighthouse?", [("Mara Vollen", 0)], sid(1), impossible=None),
    qa(P[0][1], "When was the lighthouse built?", [("1862", 0)], sid(2), impossible=None),
    qa(P[0][1], "How tall is the lighthouse?", [("31 metres", 0)], sid(3), impossible=None),
    qa(P[0][1], "What fuel did the lamp use first?", [("whale oil", 0)], sid(4), impossible=None),
    qa(P[0][1], "How many steps lead to the gallery?", [("212", 0)], sid(5), impossible=None)]},
  {"context": P[1][1], "qas": [
    qa(P[1][1], "Who was the keeper during the storm of 1907?", [("Tomas Brek", 0)], sid(6), impossible=None),
    qa(P[1][1], "What did the town council give the keeper?", [("a silver watch", 0)], sid(7), impossible=None)]}]),
 article("River_Alsen", [
  {"context": P[2][1], "qas": [
    qa(P[2][1], "Where does the Alsen rise?", [("the Tarn hills", 0)], sid(8), impossible=None),
    qa(P[2][1], "What is the largest tributary of the Alsen?", [("the Mell", 0)], sid(9), impossible=None),
    qa(P[2][1], "Which weir must canoeists carry their boats around?", [("the weir at Holm", 0)], sid(10), impossible=None),
    qa(P[2][1], "What did barges carry on the lower river?", [("timber and grain", 0)], sid(11), impossible=None)]}]),
]}
v1_dev = {"version": "1.1", "data": [
 article("Glass_Making", [
  {"context": P[3][1], "qas": [
    qa(P[3][1], "At what temperature is glass melted?", [("about 1500 degrees Celsius", 0), ("1500 degrees Celsius", 0), ("1500", 0)], sid(12), impossible=None),
    qa(P[3][1], "What does limestone do?", [("makes the finished glass resistant to water", 0), ("resistant to water", 0)], sid(13), impossible=None),
    qa(P[3][1], "Which metal gives a deep red colour?", [("gold", 0), ("gold", 0)], sid(14), impossible=None)]},
  {"context": P[4][1], "qas": [
    qa(P[4][1], "When was the float process introduced?", [("in the 1950s", 0), ("the 1950s", 0)], sid(15), impossible=None),
    qa(P[4][1], "What is the molten glass poured onto?", [("a bath of liquid tin", 0), ("liquid tin", 0)], sid(16), impossible=None)]}]),
 article("River_Alsen", [
  {"context": P[2][1], "qas": [
    qa(P[2][1], "Into which lake does the Alsen flow?", [("Lake Orvo", 0)], sid(17), impossible=None),
    qa(P[2][1], "What follows the old towpath?", [("A cycle path", 0), ("cycle path", 0)], sid(18), impossible=None)]}]),
]}

def imp(context, question, qid, plausible):
    return qa(context, question, [], qid, impossible=True, plausible=plausible)

def ans(context, question, answers, qid):
    return qa(context, question, answers, qid, impossible=False)

v2_train = {"version": "v2.0", "data": [
 article("Harbour_Lighthouse", [
  {"context": P[0][1], "qas": [
    ans(P[0][1], "Who built the harbour lighthouse?", [("Mara Vollen", 0)], "v2" + sid(21)),
    ans(P[0][1], "When was the lamp converted to electricity?", [("1954", 0)], "v2" + sid(22)),
    imp(P[0][1], "Who designed the museum inside the tower?", "v2" + sid(23), "Mara Vollen"),
    imp(P[0][1], "When was the lighthouse demolished?", "v2" + sid(24), "1954")]},
  {"context": P[1][1], "qas": [
    ans(P[1][1], "How many nights did the keeper stay awake?", [("three nights", 0)], "v2" + sid(25)),
    imp(P[1][1], "How many fishing boats sank in the storm?", "v2" + sid(26), "Two")]}]),
 article("River_Alsen", [
  {"context": P[2][1], "qas": [
    ans(P[2][1], "How long is the Alsen?", [("about 140 kilometres", 0)], "v2" + sid(27)),
    imp(P[2][1], "How long is the Mell?", "v2" + sid(28), "about 140 kilometres"),
    ans(P[2][1], "Near which town does the Mell join the Alsen?", [("Dessa", 0)], "v2" + sid(29))]}]),
]}
v2_dev = {"version": "v2.0", "data": [
 article("Glass_Making", [
  {"context": P[3][1], "qas": [
    ans(P[3][1], "What lowers the melting point of the sand?", [("Soda ash", 0), ("Soda ash", 0)], "v2" + sid(31)),
    imp(P[3][1], "What lowers the melting point of limestone?", "v2" + sid(32), "Soda ash"),
    ans(P[3][1], "Which oxide gives blue glass?", [("cobalt", 0)], "v2" + sid(33)),
    imp(P[3][1], "Which metal gives yellow glass?", "v2" + sid(34), "gold")]},
  {"context": P[4][1], "qas": [
    ans(P[4][1], "Why does the glass spread into a flat sheet?", [("because it is lighter than the tin", 0), ("it is lighter than the tin", 0)], "v2" + sid(35)),
    imp(P[4][1], "When was the float process abandoned?", "v2" + sid(36), "in the 1950s")]}]),
]}

Q = [
 "Ilse Marten ran the bakery on Quay Street with her brother Jonas. When the flour mill closed, she drove to the coast every week to buy flour, while he stayed behind and baked through the night. Their cousin Pia Lund later joined them and took over the accounts. Years afterwards, Jonas wrote that his sister had kept the business alive.",
 "The painter Edda Rask shared a studio with the sculptor Nils Ohr. He worked with stone and she with oil paint. When the studio burned down, Ohr moved to the capital, but Rask stayed in the village and rebuilt it with the help of her neighbour, Anton Vey, who was a carpenter.",
]
def qid(i): return hashlib.sha1(f"dicenlp-quoref-{i}".encode()).hexdigest()
def multi(context, question, spans, i):
    return {"question": question, "id": qid(i), "answers": [
        {"answer_start": context.index(s), "text": s} for s in spans]}
quoref_train = {"data": [
 {"title": "The Quay Street Bakery", "url": "https://example.org/dicenlp/quay-street", "paragraphs": [
  {"context": Q[0], "context_id": qid(100), "qas": [
    multi(Q[0], "Who drove to the coast every week?", ["Ilse Marten"], 1),
    multi(Q[0], "What is the first name of the person who baked through the night?", ["Jonas"], 2),
    multi(Q[0], "Who took over the accounts of the business run by the siblings?", ["Pia Lund"], 3),
    multi(Q[0], "What are the full names of the two people who joined the bakery after the mill closed or ran it?", ["Ilse Marten", "Pia Lund"], 4)]}]},
]}
quoref_dev = {"data": [
 {"title": "The Village Studio", "url": "https://example.org/dicenlp/village-studio", "paragraphs": [
  {"context": Q[1], "context_id": qid(101), "qas": [
    multi(Q[1], "Who worked with oil paint?", ["Edda Rask"], 5),
    multi(Q[1], "Where did the person who worked with stone move to?", ["the capital"], 6),
    multi(Q[1], "What was the profession of the man who helped the painter rebuild the studio?", ["carpenter"], 7),
    multi(Q[1], "What are the last names of the two artists who shared a studio?", ["Rask", "Ohr"], 8)]}]},
]}

files = {"v1.1/train-v1.1.json": v1_train, "v1.1/dev-v1.1.json": v1_dev, "v2.0/train-v2.0.json": v2_train,
         "v2.0/dev-v2.0.json": v2_dev, "quoref/quoref-train-v0.1.json": quoref_train, "quoref/quoref-dev-v0.1.json": quoref_dev}
for name, obj in files.items():
    path = root / name; path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False) + "\n")
    print(path, path.stat().st_size)
