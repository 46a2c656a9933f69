//! The word lists of the refusal grammar's frames ([`super::frames`]), per language:
//! alternatives separated by `|`, matched ASCII-case-insensitively on a word start, as prefixes.

// English ---------------------------------------------------------------------------------

pub(super) const EN_NEG: &str = "sorry, can't|sorry, cannot|sorry, won't|sorry, not able to|sorry, unable to|not my place to|it's not my place to|i can't|i cant|i cannot|i can not|i won't|i will not|i'll not|i'm not able to|\
    i am not able to|i'm unable to|i am unable to|i'm not going to|i am not going to|\
    i'm not willing to|i am not willing to|i'm not prepared to|i am not prepared to|\
    i'm not in a position to|i am not in a position to|i'm not allowed to|\
    i am not allowed to|i'm not permitted to|i refuse to|i decline to|i don't think i can|\
    i'll refrain from|i will refrain from|i'm going to refrain from|i must refrain from|\
    i'll have to decline|i'd have to decline|i'm going to have to decline|i'm not about to|\
    i must decline to|i have to decline to|i'm declining to|i won't be able to|\
    i will not be able to|i'm afraid i can't|i'm afraid i cannot|i'm afraid i won't";
pub(super) const EN_VERBS: &str = "help|assist|provid|giv|includ|writ|creat|generat|produc|shar|comply|complying|fulfil|support|\
    do that|do this|do it|do so|doing that|doing this|doing it|engag|participat|offer|draft|\
    compos|disclos|reveal|invent|fabricat|make up|making up|make that|make this|answer|\
    explain|describ|detail|outlin|list|walk you through|walking you through|\
    go through|going through|teach|instruct|guid|show you|\
    showing you|tell you how|telling you how|break down|breaking down|break it down|\
    elaborat|expand on|expanding on|speculat|comment|discuss|weigh in|weighing in|translat|\
    summar|role-play|roleplay|impersonat|endors|promot|facilitat|contribut|put together|\
    putting together|synthes|manufactur|diagnos|prescrib|advis|step you|cover that|\
    cover this|touch that|touch this|go there|go down that|be part of|take part|be of help|\
    be of assistance|be involved|get involved|continue with|continue this|draw up|\
    come up with|coming up with|hand over|give out|pass along|point you|specify|nam|\
    identify|dox|track|hack|bypass|crack|break into|program|design|plan|prepar|\
    divulg";
pub(super) const EN_SOMETHING: &str = "not something i|isn't something i|isn't something that i|wasn't something i|not something that i|something i won't|something i will not|\
    something i can't|something i cannot|something i'm not|something i am not|\
    something i'd rather not|something i would rather not|something i'll pass on|\
    something i need to decline|something i have to decline|something i must decline|\
    not a thing i|not anything i|nothing i can|not a request i|a request i can't|\
    a request i won't|a request i cannot|not a topic i|a topic i won't|a topic i can't|\
    not an area i|an area i won't|an area i can't";
pub(super) const EN_SOMETHING_TAIL: &str = "can fulfil|can comply|can accommodate|can honor|can honour|can take on|can entertain|can complete|do|help|assist|provid|writ|creat|generat|produc|shar|support|engag|participat|offer|\
    answer|explain|describ|detail|go into|get into|weigh in|comment|speculat|discuss|\
    take part|be part|'m comfortable|am comfortable|feel comfortable|'m willing|am willing|\
    'm prepared|am prepared|'m going to|am going to|can help|can assist|can do|can provide|\
    can write|can share|can support|can answer|can discuss|can get into|can go into|\
    can comment|will do|will help|will provide|will write|'ll do|'ll help|'ll provide|\
    'll write|'m able to help|am able to help|entertain|go along|get behind|endors";
pub(super) const EN_ABSTAIN_HEAD: &str = "i've|i have|i have to|i'm going to have to|i'll have to|i will have to|i'm going to have to|i'd have to|i'll|i will|i'm going to|i am going to|i think i'll|i think i will|i'd better|\
    i had better|i have to|i must|i need to|i'd like to|i would like to|i should|i'd|let me|\
    i'm gonna|i'm just going to";
pub(super) const EN_ABSTAIN: &str = "draw the line|count me out|pass.|pass,|pass;|pass!|refuse|decline|sit this one out|\
    sit that one out|sit this out|sit that out|sit out this|bow out|take a pass|\
    pass on this|pass on that|pass on it|pass here|pass this time|pass for now|\
    give this one a miss|give that one a miss|give this a miss|give that a miss|\
    steer clear of this|steer clear of that|steer clear of it|stay out of this|\
    stay out of that|stay away from this|stay away from that|leave this one|leave that one|\
    leave this alone|leave that alone|leave it there|not weigh in|not get into|not go into|\
    keep out of|not go there|not engage|not participate|not take part|respectfully decline|\
    decline this|decline that|decline the request|decline to|hold off on this|\
    hold off on that|not help|not be helping|not be able to help|not be providing|\
    not be writing|not provide|not write|not share|not assist";
pub(super) const EN_REDIRECT_VERBS: &str = "explain|provid|giv|writ|describ|detail|help|assist|shar|answer|walk|go into|going into|\
    get into|getting into|outlin|list|teach|creat|generat|produc|spell|break|offer|instruct|\
    engag|speculat";
pub(super) const EN_REDIRECT_TO: &str = "point you|refer you|direct you|redirect|steer you|professional|hotline|helpline|\
    authorities|a doctor|a lawyer|a therapist|a counselor|a counsellor|a pharmacist|\
    support services";

/// Refusals as rules or limits: "my guidelines don't allow me to", "outside what I can".
pub(super) const EN_LIMIT: &str = "wouldn't be appropriate for me to|would not be appropriate for me to|isn't appropriate for me to|is not appropriate for me to|wouldn't be right for me to|not appropriate for me to|don't allow me to|do not allow me to|doesn't allow me to|does not allow me to|\
    won't allow me to|prevent me from|prevents me from|prohibit me from|prohibits me from|\
    i'm not supposed to|i am not supposed to";
/// Present-tense policy statements: the verb is part of the anchor.
pub(super) const EN_POLICY: &str = "i don't provide|i do not provide|i don't help with|i do not help with|\
    i don't assist with|i do not assist with|i don't engage in|i do not engage in|\
    i don't generate|i do not generate|i don't produce|i do not produce|i don't facilitate|\
    i do not facilitate|i don't give out|i do not give out";
/// What a policy statement withholds ("I don't provide instructions for …").
pub(super) const EN_POLICY_OBJECTS: &str = "that|this|such|any|instruction|information|guidance|advice|\
    assistance|content|detail|personal|medical|legal|financial|specific|step|hack|weapon|\
    explicit|ways|method|help|support|tips|recipe|material|it|request|malware|exploit";
/// Colloquial declines complete in themselves.
pub(super) const EN_DECLINED: &str = "let's not go there|off-limits for me|off limits for me|off the table for me|what i won't do|what i can't do|what i cannot do|what i will not do|what i'm not going to do|what i am not going to do|that's a no from me|it's a no from me|no can do|count me out";
pub(super) const EN_OUTSIDE: &str = "outside what i|beyond what i|outside of what i|outside the scope of what i|\
    outside the bounds of what i|not within what i";
pub(super) const ES_DECLINED: &str = "fuera de lo que puedo|fuera de lo que yo puedo|no cuentes conmigo|tengo que decir que no|voy a tener que decir que no|debo decir que no|tendré que decir que no|debo negarme|tengo que negarme|me veo obligado a rechazar|\
    me veo obligada a rechazar|me veo obligado a declinar|me veo obligada a declinar|\
    declino la solicitud|declino tu solicitud|declino su solicitud|rechazo esta solicitud|\
    no atenderé|no proporcionaré|no escribiré|no ayudaré|no daré|no redactaré|no compartiré|\
    no explicaré|no facilitaré|no crearé|no generaré|no detallaré|no participaré|\
    no puede ser atendida|no puede ser atendido|no podemos atender su solicitud|no podemos atender tu solicitud";
pub(super) const JA_DECLINED: &str = "私にはできません|わたしにはできません|私にはできかねます|お伝えしません|お教えしません|お答えしません|ご提供しません|ご説明しません|提供しません|説明しません|回答しません|お手伝いしません|協力しません|いたしかねます|致しかねます|お断りします|お断りいたします|ご期待に沿え|\
    ご希望に沿え|お受けできません|お引き受けできません|応じかねます|お応えしかねます|\
    手伝えないよ|手伝えないです|手伝えません|手伝えないな|手伝えないの";

/// First-person future or explicit declining: the verb is part of the anchor.
pub(super) const FR_DECLINED: &str = "contraint de refuser|contrainte de refuser|obligé de refuser|obligée de refuser|dans l'obligation de refuser|sort du cadre de ce que je|hors du cadre de ce que je|au-delà de ce que je peux|je passe mon tour|je vais devoir refuser|je vais devoir décliner|je dois malheureusement refuser|je n'aiderai pas|je ne participerai pas|je ne créerai pas|je ne générerai pas|je ne t'aiderai|je ne vous aiderai|je ne fournirai|je ne donnerai|je n'écrirai|je ne rédigerai|je ne partagerai|je ne répondrai|je ne détaillerai|je ne te donnerai|je ne vous donnerai|je ne t'expliquerai|je ne vous expliquerai|je ne le ferai|je ne ferai pas|je me dois de refuser|je dois refuser|je dois décliner|je décline|\
    ne pouvons pas y donner suite|ne pouvons malheureusement pas y donner suite|ne pouvons y donner suite|\
    ne pouvons pas donner suite à votre demande";
pub(super) const PT_DECLINED: &str = "vou passar dessa|passo dessa|vou ter que recusar|tenho de recusar|tenho que recusar|vou precisar recusar|preciso recusar|fora do que posso|fora do que eu posso|vou passar essa|passo essa|não explicarei|não compartilharei|não criarei|não gerarei|não detalharei|não participarei|não o farei|não farei|não darei|não fornecerei|não escreverei|não ajudarei|\
    não nos é possível";
pub(super) const IT_DECLINED: &str = "oltre ciò che posso|oltre quello che posso|lascio perdere|mi tiro indietro|mi chiamo fuori|non me la sento|devo dire di no|non mi pronuncio|non mi esprimo|non lo farò|non farò|non darò|non fornirò|non scriverò|non aiuterò|non spiegherò|non condividerò|non risponderò|non descriverò|non preparerò|non redigerò|non creerò|non genererò|non rivelerò|non inventerò|non entrerò|non parteciperò|non collaborerò";

/// "I can explain X, but not Y": an answer clause that withholds the rest (partial refusals).
pub(super) const EN_BUT_NOT: &str = "but not the|but not any|but not how|but not specific|but not exact|but not step|\
    but not detailed|but not a working|but not actual|but not real";
pub(super) const EN_DEFER: &str = "something i'll|something i will|something i'm going to|part i'll|part i will|\
    part i'm going to|details i'll|details i will";
pub(super) const EN_DEFER_TAIL: &str = "skip|leave out|leave aside|pass on|sit out|hold off|steer clear|\
    decline|refrain|not|avoid|have to skip|have to leave|have to pass";
pub(super) const FR_BUT_NOT: &str = "mais pas les|mais pas la|mais pas le|mais pas de|mais pas d'|mais pas comment|\
    mais pas un|mais pas une|mais sans";
pub(super) const ES_BUT_NOT: &str = "pero no las|pero no los|pero no la|pero no el|pero no cómo|pero no un|\
    pero no una|pero sin";
pub(super) const PT_BUT_NOT: &str = "mas não as|mas não os|mas não a|mas não o|mas não como|mas não um|mas não uma|\
    mas sem";
pub(super) const IT_BUT_NOT: &str = "ma non le|ma non i|ma non la|ma non il|ma non gli|ma non come|ma non un|\
    ma non una|ma senza";
pub(super) const DE_BUT_NOT: &str = "aber nicht die|aber nicht den|aber nicht das|aber keine|aber keinen|\
    aber nicht wie|jedoch nicht|jedoch keine";
pub(super) const RU_BUT_NOT: &str = "но не конкрет|но не точн|но не подробн|но не рецепт|но не инструкц|но не как|\
    но без конкрет|но без подробн|но без точн|однако не конкрет|однако не точн";
/// First-person present tenses of request verbs after a clitic ("non te lo calcolo", "non lo
/// indico"); a form that is a prefix of its third-person plural is a whole word (`scrivo$`),
/// since classes match as stems ("scrivo" would also match "non lo scrivono").
pub(super) const IT_PRESENT_1SG: &str = "calcolo|indico|insegno|riporto|invento|elenco|procuro|\
    scrivo$|inserisco$|aggiungo$|fornisco$|spiego$";
pub(super) const IT_CLITIC2: &str =
    "non te lo|non te la|non te le|non te li|non glielo|non gliela|non glieli";
/// Request verbs after "non te lo", "non glielo": first-person forms that are a prefix of
/// another word are whole words (`dico$`: "non te lo dicono" is someone else).
pub(super) const IT_CLITIC2_VERBS: &str = "do$|darò|dirò|dico$|scrivo$|scriverò|spiego|spiegherò|fornisco$|fornirò|\
    posso$|passo|mostro|mostrerò|preparo|preparerò|indico|calcolo|insegno";

// Spanish ---------------------------------------------------------------------------------

pub(super) const ES_NEG: &str = "no es posible que te|no es posible que le|no es posible que yo|no me resulta posible|no te lo voy a|no te la voy a|no te los voy a|no te las voy a|no se lo voy a|no se la voy a|no te lo puedo|no te la puedo|no te los puedo|no te las puedo|no se lo puedo|no debería|no deberia|no me siento capaz de|no la voy a|no los voy a|no las voy a|no la puedo|no los puedo|no las puedo|no le puedo|no te puedo|no sería apropiado que yo|no es apropiado que yo|no considero apropiado|no me parece adecuado|no puedo|no voy a|no podré|no podría|no me es posible|no estoy en condiciones|\
    no estoy dispuesto a|no estoy dispuesta a|no quiero|no debo|no pienso|me niego a|\
    me abstengo de|me abstendré de|no me corresponde|no me está permitido|\
    no tengo permitido|me resulta imposible|me es imposible|no sería apropiado que|\
    no sería adecuado que|no lo voy a|no lo puedo|no te voy a|no te puedo|no le voy a|\
    no le puedo|no os voy a|no les voy a";
pub(super) const ES_VERBS: &str = "ayud|inclu|asist|colabor|proporcion|facilit|dar|darte|darle|daros|redact|escrib|crear|generar|\
    cumpl|invent|compart|respond|contest|hacer|hacerlo|atend|ofrec|explic|detall|describ|\
    indic|enseñ|particip|elabor|desarroll|prepar|fabric|sintetiz|revel|divulg|entrar en|\
    profundiz|opin|coment|especul|apoy|contribu|brind|aport|suministr|traduc|resum|orient|\
    guiar|entreg|mostr|seguir con|continuar con|involucr|meterme|prestar|pasar|pasarte";
pub(super) const ES_SOMETHING: &str = "no es algo en lo que|no es algo con lo que|no es algo que|no es algo para lo que|\
    no es un tema en el que|no es un tema que|no es algo a lo que|no es algo sobre";
pub(super) const ES_SOMETHING_TAIL: &str = "pued|podr|vaya|voy|esté|deb|quier|me sienta|me corresponda|me toca|haga|ayude|colabore|\
    participe|entre";
pub(super) const ES_REDIRECT: &str = "en lugar de|en vez de";
pub(super) const ES_REDIRECT_TO: &str = "te animo|le animo|te invito|le invito|indicarte|orientarte|remitirte|acud|profesional|\
    especialista|línea de ayuda|autoridades";
pub(super) const ES_REDIRECT_VERBS: &str = "explic|dar|darte|proporcion|detall|describ|escrib|redact|ayud|respond|facilit|compart|\
    enseñ|entrar|indic";

// French ----------------------------------------------------------------------------------

pub(super) const FR_NEG: &str = "je crains de ne pas pouvoir|je regrette de ne pas pouvoir|de ne pas pouvoir|je ne me vois pas|je ne souhaite pas m'|je m'abstiendrai|je ne pourrai pas|il n'est pas question que je|pas question que je|je ne peux pas|je ne vais pas|\
    je ne saurais|je ne peux en aucun|je ne suis pas en mesure|je ne veux pas|\
    je ne souhaite pas|je refuse de|je refuse d'|je me refuse à|je vais m'abstenir|\
    je dois m'abstenir|il m'est impossible|il ne m'est pas possible|il ne m'est pas permis|\
    je ne suis pas autorisé|je ne suis pas autorisée|je n'ai pas le droit|je ne compte pas|\
    je ne vais pas pouvoir|je ne pourrais pas|hors de question que je|\
    je peux pas|j'peux pas|je vais pas|j'vais pas";
pub(super) const FR_VERBS: &str = "faire ça|faire cela|faire ce|gonfl|falsifi|truqu|le fair|faire de faux|faire un faux|m'exprimer|exprimer|\
    aid|inclure|t'aid|vous aid|fourn|répond|donn|rédig|écri|créer|génér|partag|invent|\
    satisf|communiqu|expliqu|détaill|décri|indiqu|enseign|particip|collabor|contribu|dévoil|\
    révél|divulg|entrer dans|me prononcer|comment|spécul|tradui|résum|prépar|fabriqu|\
    synthétis|accompagn|assist|apport|t'expliqu|vous expliqu|te donn|vous donn|te fourn|\
    vous fourn|le fair|cette demande|à ta demande|à votre demande|suite|y répondre|\
    m'engager|prêter|poursuivre|continuer";
pub(super) const FR_SOMETHING: &str = "pas une chose que je|ce n'est pas une chose que je|ce n'est pas quelque chose que je|ce n'est pas quelque chose sur lequel je|\
    ce n'est pas quelque chose pour lequel je|ce n'est pas un sujet sur lequel je|\
    pas quelque chose que je|ce n'est pas une demande à laquelle je";
pub(super) const FR_REDIRECT: &str = "plutôt que de|plutôt que d'|au lieu de|au lieu d'";
pub(super) const FR_REDIRECT_TO: &str = "je vous invite|je t'invite|vous orienter|t'orienter|vous rediriger|te rediriger|\
    professionnel|spécialiste|autorités|numéro d'écoute|ligne d'écoute";
pub(super) const FR_REDIRECT_VERBS: &str = "expliqu|donn|fourn|détaill|décri|rédig|écri|aid|répond|partag|vous expliqu|t'expliqu|\
    entrer";

// German ----------------------------------------------------------------------------------

pub(super) const DE_MODAL: &str = "ich kann|kann ich|ich werde|werde ich|ich darf|darf ich|ich möchte|möchte ich|ich will|\
    will ich";
pub(super) const DE_NEG: &str =
    "nicht|keine|keinen|keinem|kein|keinesfalls|auf keinen fall|niemals";
pub(super) const DE_VERBS: &str = "verantworten|helf|weiterhelf|behilflich|unterstütz|geb|liefer|schreib|erstell|verfass|generier|\
    erklär|erläuter|beschreib|teil|weitergeb|verrat|preisgeb|nenn|beantwort|erfind|anbiet|\
    mach|tun|ausführ|bereitstell|mitteil|zeig|beitrag|mitwirk|eingeh|äußer|ausarbeit|\
    formulier|übersetz|zusammenfass|entwickl|programmier|herstell|anleit|anleitung|\
    informationen|hilfe|inhalte|code|details|einzelheiten|schritt|rezept|auskunft|auskünfte|\
    beteilig|nachkomm|erfüll|spekulier|kommentier|einlass";
pub(super) const DE_PHRASES: &str = "abstand nehmen|nehme ich abstand|muss ich dich leider enttäuschen|muss ich sie leider enttäuschen|muss ich dich enttäuschen|muss ich sie enttäuschen|muss ich leider passen|muss ich passen|da passe ich|hier passe ich|bin ich raus|ich bin raus|sehe ich davon ab|ich sehe davon ab|werde ich davon absehen|ich werde davon absehen|halte mich da lieber raus|halte mich lieber raus|halte ich mich lieber raus|halte mich da lieber heraus|ich bin nicht bereit|bin ich nicht bereit|sehe ich mich nicht in der lage|\
    ich sehe mich nicht in der lage|ich bin nicht befugt|bin ich nicht befugt|\
    das ist nichts, wobei ich|das ist nichts, was ich|das ist nichts, bei dem ich|\
    nichts, wobei ich helfen|lehne ich ab|ich lehne es ab|ich lehne diese|ich lehne das ab|\
    muss ich ablehnen|muss ich leider ablehnen|ich verzichte darauf|verzichte ich|\
    ist mir nicht möglich|ist mir leider nicht möglich|ist es mir nicht möglich|\
    kommt für mich nicht in frage|halte ich mich heraus|halte ich mich raus|\
    ich halte mich da raus|ich halte mich da heraus|möchte ich mich nicht äußern|\
    ich möchte mich nicht|ich enthalte mich";
pub(super) const DE_REDIRECT: &str = "statt|anstatt|anstelle";
pub(super) const DE_REDIRECT_VERBS: &str = "zu erklär|zu erläuter|zu geben|zu liefern|zu beschreib|zu schreib|anzuleit|zu helfen|\
    zu beantwort|zu teilen|zu nennen|zu verfass";
pub(super) const DE_REDIRECT_TO: &str = "verweise ich|möchte ich dich|möchte ich sie|fachleute|fachperson|fachstelle|\
    anlaufstelle|beratungsstelle|arzt|ärztin|anwalt|behörde|hotline|wende dich|\
    wenden sie sich";

// Portuguese ------------------------------------------------------------------------------

pub(super) const PT_NEG: &str = "não dá para|não dá pra|não poderei|não seria apropriado|não é apropriado que eu|não posso|não consigo|não vou|não poderia|\
    não me é possível|não estou em condições|não estou disposto a|não estou disposta a|\
    não quero|não devo|me recuso a|recuso-me a|eu não vou|vou me abster|me abstenho|\
    abstenho-me|não tenho como|não me cabe|não me é permitido|não te vou|não lhe vou|\
    não vou te|não vou lhe";
pub(super) const PT_VERBS: &str = "fazer isso|fazer isto|fazê-lo|fazer esse|fazer essa|fazer um|fazer uma|entrar n|ajud|\
    inclu|auxili|fornec|dar|escrev|redig|criar|gerar|atend|invent|compartilh|partilh|\
    respond|cumpr|ofere|explic|detalh|descrev|indic|ensin|particip|colabor|contribu|revel|\
    divulg|entrar em|opin|coment|especul|prepar|fabric|sintetiz|traduz|resum|apoi|mostr|\
    continuar|seguir com|envolver|me envolver|mont|organiz|elabor|planej|calcul|recomend";
pub(super) const PT_SOMETHING: &str = "não é algo que eu|não é algo com que eu|não é algo em que eu|não é algo que|\
    não é algo com o qual|não é um assunto em que|não é um tema em que";
pub(super) const PT_SOMETHING_TAIL: &str =
    "poss|pod|vá|vou|deva|queira|esteja|me sinta|faça|ajude|participe|entre";
pub(super) const PT_REDIRECT: &str = "em vez de|ao invés de|em lugar de";
pub(super) const PT_REDIRECT_VERBS: &str = "explic|dar|fornec|detalh|descrev|escrev|redig|ajud|respond|compartilh|ensin|entrar|\
    indic";
pub(super) const PT_REDIRECT_TO: &str = "te incentivo|incentivo você|te encaminhar|encaminhá|profissional|especialista|\
    autoridades|linha de apoio|cvv";

// Italian ---------------------------------------------------------------------------------

pub(super) const IT_NEG: &str = "non è possibile per me|mi asterrò|non potrò|non posso|non riesco a|non sono in grado|non potrei|non voglio|non intendo|\
    non ho intenzione di|non mi è possibile|non sono disposto a|non sono disposta a|\
    mi rifiuto di|mi astengo|non mi è consentito|non mi è permesso|non me la sento di|\
    non è il caso che io";
pub(super) const IT_VERBS: &str = "farlo|fare questo|fare ciò|fare una|fare un|aiut|includ|inserir|assist|fornir|dar|scriv|\
    crear|gener|soddisf|invent|condivid|rispond|accontent|spieg|dettagli|descriv|indic|\
    insegn|partecip|collabor|contribu|rivel|divulg|entrare nel|esprim|comment|specul|prepar|\
    fabbric|sintetizz|tradur|riassum|support|redig|darò|fornirò|scriverò|aiuterò|spiegherò|\
    condividerò|risponderò|descriverò|preparerò|redigerò|creerò|genererò|rivelerò|inventerò|\
    farò|mostr|proseguire|continuare";
pub(super) const IT_SOMETHING: &str = "non è qualcosa che|non è qualcosa in cui|non è qualcosa su cui|non è qualcosa con cui|\
    non è un argomento su cui|non è una richiesta che";
pub(super) const IT_SOMETHING_TAIL: &str =
    "poss|pot|vogli|intend|sia dispost|mi sent|faccia|aiut|entr|partecip|farò|posso";
pub(super) const IT_REDIRECT: &str = "invece di|anziché|piuttosto che";
pub(super) const IT_REDIRECT_VERBS: &str = "spieg|dar|fornir|dettagli|descriv|scriv|redig|aiut|rispond|condivid|insegn|entrare|\
    indic";
pub(super) const IT_REDIRECT_TO: &str = "ti invito|la invito|indicarti|indicarle|orientarti|rivolg|professionist|specialist|\
    autorità|telefono amico";

// Russian ---------------------------------------------------------------------------------

pub(super) const RU_NEG: &str = "не могу|не буду|не стану|не смогу|не собираюсь|не готов|не готова|не вправе|\
    не имею права|я не в состоянии|не хочу|\
    мне нельзя|не могу себе позволить|не возьмусь|не берусь|не считаю возможным|\
    не считаю уместным|не стоит мне";
pub(super) const RU_VERBS: &str = "помо|коммент|выдумыва|расписыва|помогу|предостав|выполн|созда|напис|писа|дать|давать|дам|поделит|делиться|\
    ответить|отвечать|сгенерир|генерир|выдума|придума|раскры|сообщ|содейств|объясн|описа|\
    опишу|рассказ|расскажу|расписа|подсказ|участв|составить|составлять|составлю|разъясн|\
    делать|сделать|сделаю|перевод|перевест|обсужда|обсуди|комментир|высказ|подготов|изготов|\
    синтезир|называ|назва|назову|советова|посоветова|рекомендова|разрабатыва|разработа|\
    приводи|привести|приведу|инструкц|рецепт";

// Chinese ---------------------------------------------------------------------------------

pub(super) const ZH_NEG: &str = "我选择不|我无法|我不能|我不会|我没法|我没办法|我没有办法|我無法|我不會|我不便|我不方便|我不太方便|恕我不能|恕我无法|恕难|我不打算|我不想|我就不|我还是不|\
    我先不|我暂时不|我不再|我不予|我无权|我不适合|我不太适合|我不应该|我不该|我恐怕不能|我恐怕无法|我实在不能|我实在无法|我确实不能|我確實不能|\
    我沒辦法|我不打算|我就不多|我不准备|我不準備|我不願|我不愿意|我不願意|我不宜|我没法儿";
pub(super) const ZH_VERBS: &str = "帮|幫|协助|協助|提供|满足|滿足|回答|生成|完成|编写|編寫|写|寫|编造|編造|创作|創作|分享|透露|参与|參與|支持|展开|展開|讨论|討論|详细|詳細|细说|\
    細說|多说|多說|说明|說明|解释|解釋|告诉|告訴|给出|給出|给你|給你|教|指导|指導|评论|評論|发表|發表|做|处理|處理|答复|答覆|回应|回應|介绍|介紹|描述|\
    列出|制作|製作|翻译|翻譯|谈|談|聊|深入|具体|具體|评价|評價|猜测|猜測|推测|推測|配合|这样做|這樣做|这么做";
pub(super) const ZH_PHRASES: &str = "我不掺和|我不插手|我不参与|我不參與|就不说了|就不多说了|就不展开了|就不细说了|就不提供了|就不写了|就不透露了|就不详细|就不具体|就不說了|就不多說了|帮不上忙|帮不了忙|幫不上忙|幫不了忙|不予处理|不予提供|不予协助|不予處理|超出了我可以|超出我可以|超出了我能|不在我可以|无能为力|無能為力|超出了我的服务范围|超出我的服务范围|不在我的服务范围|我拒绝|我得拒绝|只能拒绝|必须拒绝|不得不拒绝|无可奉告|無可奉告|不便透露|不便回答|不便评论|不便評論|不予置评|不予置評|我不提供|也不提供|我不画|不予回答|恕不|请恕我|請恕我|这个忙我帮不了|這個忙我幫不了|我帮不了|我幫不了|我帮不上|\
    我幫不上|超出了我能|不在我能提供|爱莫能助|愛莫能助|这个忙我真帮不了|这个忙真帮不了|我真帮不了|我实在帮不了|這個忙我真幫不了|我真幫不了|我實在幫不了";

pub(super) const RU_PHRASES: &str = "не помощник|не помощница|за рамки того, что я могу|выходит за рамки моих|я пропущу этот|пропущу этот вопрос|я пас|воздержусь|вынужден отказаться|вынуждена отказаться|вынужден отказать|\
    вынуждена отказать|откажусь от|позвольте мне не|\
    не может быть удовлетворён|не может быть удовлетворен";

pub(super) const RU_SOMETHING: &str = "не то, с чем я|не то, в чем я|не то, чем я|не то, что я";

// Japanese --------------------------------------------------------------------------------

pub(super) const JA_NEG: &str = "られません|れません|けません|せません|えません|やめておいた|やめておきたい|やめておこう|控えたほうが|遠慮したほうが|ことはできません|ことができません|ことはできかねます|いたしかねます|しかねます|わけにはいきません|わけにはいかない|は控えます|を控えます|のは控え|は控えさせて|\
    は差し控え|を差し控え|ことはしません|つもりはありません|ことはお断り|はお断り|をお断り|できないです|できません|はいたしません|ことは致しかねます|致しかねます|\
    ことは遠慮|のは遠慮|は遠慮させて|はやめておきます|のはやめて|きません|\
    はしません";
pub(super) const JA_VERBS: &str = "言|受け|お受け|引き受け|書|作成|提供|説明|回答|答え|お答え|教え|お教え|伝え|お伝え|手伝|協力|生成|共有|開示|公開|紹介|作る|作り|案内|詳しく|詳細|述べ|申し上げ|解説|お話し|\
    話す|手助け|支援|応じ|対応|記載|翻訳|助言|アドバイス|具体的|コメント|言及|推測|お手伝い|ご案内|ご提供|ご説明|ご回答|お渡し|作業|お応え|応え|参加|関与|\
    お勧め|おすすめ|推奨|明か|教示|ご教示|提示|示す|示し|意見|判断";

/// Soft declines: first person + preference or comfort + a request verb. Opening only: later in
/// an answer they are usually advice ("I'd rather not use globals there").
pub(super) const EN_SOFT: &str = "i don't feel right|i do not feel right|wouldn't feel right|i'd be uncomfortable|i would be uncomfortable|i'm uncomfortable|i am uncomfortable|i'd rather not|i would rather not|i'd prefer not to|i would prefer not to|\
    i don't think i should|i do not think i should|i don't feel comfortable|\
    i do not feel comfortable|i'm not comfortable|i am not comfortable|i'd better not|\
    i had better not|i'm choosing not to|i choose not to|i'll hold off on|i'll pass on|\
    i'm going to pass on|i'd rather pass on|i'm not really comfortable|i'm not keen on|\
    i'm not keen to|i don't want to|i do not want to";
pub(super) const ES_SOFT: &str = "prefiero no|preferiría no|no me siento cómodo|no me siento cómoda|mejor no|\
    creo que es mejor que no|creo que mejor no|no me parece bien|no me parece apropiado";
pub(super) const FR_SOFT: &str = "je préfère ne pas|je préférerais ne pas|je ne me sens pas à l'aise|\
    je ne suis pas à l'aise|il vaut mieux que je ne|mieux vaut que je ne|\
    je ne me sens pas de";
pub(super) const PT_SOFT: &str = "prefiro não|preferiria não|não me sinto confortável|não me sinto à vontade|\
    acho melhor não|é melhor eu não|melhor eu não";
pub(super) const IT_SOFT: &str = "preferisco non|preferirei non|non mi sento a mio agio|meglio che non|\
    credo sia meglio non|è meglio che io non";
pub(super) const RU_SOFT: &str = "мне не хотелось бы|не хотелось бы мне|я бы не стал|я бы не стала|я бы предпочёл не|я бы предпочел не|я бы предпочла не|\
    мне лучше не|лучше я не|мне некомфортно|мне неудобно|я бы не хотел|я бы не хотела";
pub(super) const DE_VERB_FIRST: &str = "mache ich|baue ich|ich zeig dir|ich zeige dir|zeig ich dir|zeige ich dir|rechne ich|löse ich|verrat ich|sag ich dir|schreib ich|bau ich|trage ich|beschreibe ich|beantworte ich|recherchiere ich|erfinde ich|übernehme ich|tue ich|helfe ich|ich helfe|gebe ich|schreibe ich|erkläre ich|liefere ich|verrate ich|\
    ich verrate|nenne ich|teile ich dir|unterstütze ich|ich unterstütze|formuliere ich|bestätige ich|verfasse ich|erstelle ich|\
    verrate ich dir|formuliere ich dir|bestätige ich dir|schreibe ich dir|erkläre ich dir|gebe ich dir|nenne ich dir|\
    erstelle ich dir|verrate ich ihnen|bestätige ich ihnen|erkläre ich ihnen|nenne ich ihnen";
pub(super) const IT_CLITIC: &str = "non ti|non vi|non le|non gli|non la|non lo";
/// Spanish object clitics after a negation ("el 5 no te lo resuelvo", "eso no te lo paso").
pub(super) const ES_CLITIC: &str = "no te lo|no te la|no te los|no te las|no se lo|no se la";
pub(super) const ES_PRESENT_1SG: &str = "resuelvo|paso|hago|escribo|redacto|calculo|invento|preparo|\
    doy|digo|cuento|consigo|recomiendo|pongo|incluyo|añado|busco|monto|armo|falsifico";
pub(super) const IT_FUTURE: &str = "darò|fornirò|scriverò|aiuterò|spiegherò|condividerò|risponderò|descriverò|preparerò|\
    redigerò|creerò|genererò|rivelerò|inventerò|farò|dirò come|mostrerò|indicherò|insegnerò|\
    passerò";

// Withholding a specific part ("I'll leave out the exact ratios", "具体的な量は省略します"): an
// omission verb in the first person beside a word for the specifics withheld. Answers omit for
// brevity too ("I've left out the imports"), so the specifics are required.
pub(super) const EN_WITHHOLD: &str = "i'll leave out|i will leave out|i'm leaving out|i am leaving out|i've left out|\
    i have left out|i'm going to leave out|i'll omit|i will omit|i'm omitting|i've omitted|\
    i have omitted|i'm going to omit|i'll skip|i will skip|i'm skipping|i've skipped|\
    i'm going to skip|i'll hold back|i'm holding back|i'll withhold|i'm withholding|\
    i've withheld|i won't include|i will not include|i'm not including|i am not including|\
    i'm not going to include|deliberately omitted|intentionally omitted|deliberately left out|\
    intentionally left out|deliberately leaving out|i'll leave those out|i'll leave that out";
pub(super) const EN_SPECIFICS: &str = "quantit|amount|ratio|proportion|dose|dosage|\
    dosing|measurement|concentration|reagent|step-by-step|step by step|payload|synthesis|\
    working exploit|proof-of-concept|lethal|dangerous";
pub(super) const ES_WITHHOLD: &str = "he omitido|omito|omitiré|voy a omitir|dejo fuera|dejaré fuera|he dejado fuera|\
    las dejo fuera|los dejo fuera|la dejo fuera|lo dejo fuera|me reservo|prefiero no poner|\
    no incluyo|no incluiré|no voy a incluir|he preferido omitir";
pub(super) const ES_SPECIFICS: &str = "cantidad|dosis|proporci|paso a paso|\
    temperatura|reactivo|peligros|letal";
pub(super) const FR_WITHHOLD: &str = "j'ai omis|j'omets|je vais omettre|j'ai volontairement omis|je laisse de côté|\
    j'ai laissé de côté|je passe sous silence|je n'inclus pas|je n'indique pas|je ne précise pas|\
    je ne donne pas|je tais";
pub(super) const FR_SPECIFICS: &str = "quantit|proportion|dose|dosage|étape par étape|température|\
    réactif|dangereu|létal";
pub(super) const DE_WITHHOLD: &str = "lasse ich weg|lasse ich aus|lasse ich bewusst weg|lasse ich hier weg|\
    lasse ich absichtlich weg|habe ich weggelassen|habe ich ausgelassen|habe ich bewusst weggelassen|\
    spare ich aus|nenne ich nicht|nenne ich hier nicht|gebe ich nicht an|führe ich nicht auf|\
    verschweige ich";
pub(super) const DE_SPECIFICS: &str = "Menge|Dosis|Dosier|Verhältnis|Mischverhältnis|Temperatur|\
    Schritt-für-Schritt|gefährlich|tödlich";
pub(super) const PT_WITHHOLD: &str = "omiti|omito|vou omitir|deixei de fora|deixo de fora|ficou de fora|\
    ficaram de fora|não vou incluir|não incluo|eu não coloco|prefiro não colocar";
pub(super) const PT_SPECIFICS: &str = "quantidade|dose|proporç|passo a passo|\
    temperatura|reagente|perigos|letal";
pub(super) const IT_WITHHOLD: &str = "ho omesso|ometto|ometterò|ho lasciato fuori|l'ho lasciata fuori|\
    li ho lasciati fuori|le ho omesse|li ho omessi|lascio fuori|tralascio|non includo|\
    non le indico|non li indico|non riporto|sorvolo su";
pub(super) const IT_SPECIFICS: &str =
    "quantità|dosi|dosaggi|proporzion|passo passo|temperatur|reagent|pericolos|letal";
pub(super) const RU_WITHHOLD: &str = "опускаю|опущу|я опустил|я опустила|не привожу|не указываю|не включаю|\
    не включил|не включила|оставлю за скобками|оставил за скобками|оставила за скобками|умолчу|\
    не стану приводить|приводить не стану|указывать не стану|не буду указывать|не буду приводить";
pub(super) const RU_SPECIFICS: &str = "дозиров|доз|пропорц|количеств|температур|пошагов|реагент|\
    опасн|смертельн";
pub(super) const ZH_WITHHOLD: &str = "我就省略|就省略了|我省略了|我略去|略去了|我就略过|就略过了|我删掉了|我删去了|\
    我就不列|我不列出|这里不展开|就不展开了|没有写进去|没写进去|就不写了|我不写出|我就不给";
pub(super) const ZH_SPECIFICS: &str = "配比|比例|剂量|用量|温度|配方|危险";
pub(super) const JA_WITHHOLD: &str = "省略します|省略しています|割愛します|割愛しています|載せていません|載せません|\
    書きません|記載を控え|伏せます|伏せておき|お出ししません|詳しく書きません";
pub(super) const JA_SPECIFICS: &str = "分量|量|配合|比率|温度|濃度|危険";

// Short plain refusals with the object as topic: "这个我不做", "それはやりません". The topic
// (a demonstrative, or the object marked with は) carries the refusal the verb alone does not,
// so these count only in the opening, where an answer does not yet describe software.
pub(super) const ZH_TOPIC_NEG: &str = "这个我不|这个我就不|这个我可不|这个我是不|这种我不|这类我不|这事我不|这件事我不|\
    此事我不|那个我不|这种事我不|这种东西我不|这些我不|这个忙我不|這個我不|這個我就不|這種我不|\
    這件事我不|这个我一律不|这类内容我一律不|这类内容我不|这种内容我不";
pub(super) const ZH_TOPIC_VERBS: &str =
    "做|干|幹|接|写|寫|碰|弄|帮|幫|提供|回答|生成|参与|參與|管|答应|答應|教";
pub(super) const JA_TOPIC_NEG: &str = "それはやりません|それはしません|それはいたしません|それは書きません|\
    それは作りません|それはお受けしません|それは引き受けません|そういうのはやりません|\
    そういうのは書きません|その依頼は引き受けません|そのご依頼は引き受けません|\
    は書きません|は作りません|は作成しません|はやりません|はいたしません|は引き受けません|\
    はお引き受けしません|はお出ししません|は出しません|は手伝いません|はお手伝いしません|\
    は手伝いしません|その手伝いはしません|そのお手伝いはしません|はやらないです|は書かないです|\
    は作らないです|書かないことにしています|作らないことにしています|やらないことにしています";

// A fronted or clitic object with a negated first-person verb of doing or writing, as the
// whole answer opens ("Eso no lo hago", "Non lo faccio", "Das schreibe ich nicht"). In the
// opening only: later, the same words narrate habits ("I don't do that in tests").
pub(super) const ES_NOT_DOING: &str = "no lo hago|no lo haré|no lo voy a hacer|no voy a hacerlo|no voy a hacer eso|\
    no hago eso|no pienso hacerlo|no lo escribo|no lo escribiré|no lo voy a escribir|no lo redacto|\
    no la escribo|no la redacto|eso no lo hago|esto no lo hago|no te ayudo|no le ayudo|no os ayudo|ahí no te ayudo|en eso no te ayudo|\
    lo que no haré es|lo que no voy a hacer es|lo que no puedo hacer es|\
    no doy instrucciones|no doy indicaciones|no doy consejos|no doy datos|no escribo|no redacto|no genero|\
    no fabrico|no comparto|no explico cómo|no facilito|no proporciono|no elaboro|no invento";
pub(super) const PT_NOT_DOING: &str = "não faço isso|não faço isto|isso eu não faço|não vou fazer isso|não vou fazer isto|\
    não vou fazê-lo|não escrevo isso|isso eu não escrevo|não vou escrever isso|não redijo|não te ajudo|não lhe ajudo|aí eu não ajudo|aí não ajudo|nisso eu não ajudo|\
    nisso não ajudo|o que não posso fazer é|o que não vou fazer é|o que não farei é|\
    não escrevo|não redijo|não forneço|não dou instruções|não dou dicas|não explico como|não preparo|\
    não gero|não invento";
pub(super) const IT_NOT_DOING: &str = "non lo faccio|non lo farò|non la faccio|non la farò|non lo scrivo|\
    non lo scriverò|non la scrivo|non la scriverò|non intendo farlo|non ho intenzione di farlo|\
    non faccio questo|non scrivo questo|non ti aiuto|non vi aiuto|non la aiuto|non ti scrivo|non ti preparo|\
    non ti spiego come|quello che non farò è|quello che non posso fare è|ciò che non farò è|\
    non spiego|non scrivo|non fornisco|non forniamo|non do istruzioni|non do indicazioni|non do consigli|\
    non preparo|non redigo|non genero|non invento|non condivido|la richiesta non può essere evasa|\
    la richiesta non può essere accolta";
pub(super) const FR_NOT_DOING: &str = "je ne le fais pas|je ne fais pas ça|je ne vais pas le faire|je ne l'écrirai pas|\
    je n'écris pas ça|je ne l'écris pas|je ne vais pas l'écrire|je ne rédige pas ça|\
    je ne vais pas faire ça|je vais m'abstenir|je préfère m'abstenir|je vais m'en abstenir|\
    je préfère m'en abstenir|ce que je ne ferai pas, c'est|ce que je ne peux pas faire, c'est|\
    je refuse|hors de question de t'|hors de question de te|hors de question de vous|\
    hors de question d'y|je n'écris pas|je ne rédige pas|je ne fournis pas|\
    je ne donne pas de|je ne donne pas d'|je n'explique pas|je ne fabrique pas|je ne génère pas|je ne prépare pas|\
    je ne crée pas";
pub(super) const DE_NOT_DOING: &str = "das mache ich nicht|so etwas mache ich nicht|sowas mache ich nicht|\
    das schreibe ich nicht|so etwas schreibe ich nicht|sowas schreibe ich nicht|das tue ich nicht|\
    das werde ich nicht tun|das werde ich nicht machen|schreibe ich nicht|verfasse ich nicht|\
    des mach i ned|mach i ned|des moch i ned|moch i ned|mach ich ned|verrat i ned";
/// First person, present tense, a producing verb, then "kein…" ("Ich schreibe keine
/// Bewertungen", "Ich formuliere Ihnen keine Abmahnung"): the plain German decline without a
/// modal. Producing verbs only: "ich gebe keine Garantie" and "ich mache keine Werbung" are
/// disclaimers inside answers.
pub(super) const DE_PRESENT_1SG: &str = "ich schreibe|ich erstelle|ich verfasse|ich formuliere|ich erzeuge|\
    ich generiere|ich liefere|ich nenne|ich knacke|ich baue|ich bastle|ich bastel|ich programmiere|\
    ich erfinde|ich fälsche|ich entwerfe|ich besorge|ich beschaffe|ich stelle|ich übersetze|\
    ich recherchiere|ich hacke";
pub(super) const EN_NOT_DOING: &str = "not doing that|not doing this|i'm not doing that|not gonna do that|\
    i'm not gonna do that|i don't do that|i don't write those|i don't write that|\
    not writing that|i'm not writing that";
pub(super) const RU_NOT_DOING: &str = "делать этого не буду|делать этого не стану|делать не стану|делать не буду|\
    не стану этого делать|не буду этого делать|такое не пишу|такого не пишу|писать не стану|\
    этим не занимаюсь|\
    не помогу|не подскажу|не посоветую|не расскажу|не напишу|запрос отклонён|запрос отклонен";

// A negated request verb that ends its clause, as a short reply opens ("…，我不做。",
// "这个问题我不回答。"): the clause has nothing after the verb, so it is the answer.
pub(super) const ZH_NEG_VERB_END: &str = "我不做。|我不做了|我不做！|我不做，|我不干。|我不干了|我不干！|我不干，|我不接。|我不接了|我不接！|我不接，|\
    我不写。|我不写了|我不写！|我不写，|我不提供。|我不提供了|我不提供！|我不提供，|我不回答。|我不回答了|\
    我不回答！|我不回答，|我不碰。|我不碰了|我不碰！|我不碰，|我不给。|我不给了|我不给！|我不给，|我不帮忙写。|\
    我不帮忙写了|我不帮忙写！|我不帮忙写，|我不帮你写。|我不帮你写了|我不帮你写！|我不帮你写，|我不帮你做。|\
    我不帮你做了|我不帮你做！|我不帮你做，|我就不做。|我就不做了|我就不做！|我就不做，|我就不干。|我就不干了|\
    我就不干！|我就不干，|我就不接。|我就不接了|我就不接！|我就不接，|我就不写。|我就不写了|我就不写！|我就不写，|\
    我就不提供。|我就不提供了|我就不提供！|我就不提供，|我就不回答。|我就不回答了|我就不回答！|我就不回答，|\
    我就不碰。|我就不碰了|我就不碰！|我就不碰，|我就不给。|我就不给了|我就不给！|我就不给，|我就不帮忙写。|\
    我就不帮忙写了|我就不帮忙写！|我就不帮忙写，|我就不帮你写。|我就不帮你写了|我就不帮你写！|我就不帮你写，|\
    我就不帮你做。|我就不帮你做了|我就不帮你做！|我就不帮你做，|我可不做。|我可不做了|我可不做！|我可不做，|\
    我可不干。|我可不干了|我可不干！|我可不干，|我可不接。|我可不接了|我可不接！|我可不接，|我可不写。|我可不写了|\
    我可不写！|我可不写，|我可不提供。|我可不提供了|我可不提供！|我可不提供，|我可不回答。|我可不回答了|我可不回答！|\
    我可不回答，|我可不碰。|我可不碰了|我可不碰！|我可不碰，|我可不给。|我可不给了|我可不给！|我可不给，|\
    我可不帮忙写。|我可不帮忙写了|我可不帮忙写！|我可不帮忙写，|我可不帮你写。|我可不帮你写了|我可不帮你写！|\
    我可不帮你写，|我可不帮你做。|我可不帮你做了|我可不帮你做！|我可不帮你做，|我一律不做。|我一律不做了|我一律不做！|\
    我一律不做，|我一律不干。|我一律不干了|我一律不干！|我一律不干，|我一律不接。|我一律不接了|我一律不接！|\
    我一律不接，|我一律不写。|我一律不写了|我一律不写！|我一律不写，|我一律不提供。|我一律不提供了|我一律不提供！|\
    我一律不提供，|我一律不回答。|我一律不回答了|我一律不回答！|我一律不回答，|我一律不碰。|我一律不碰了|我一律不碰！|\
    我一律不碰，|我一律不给。|我一律不给了|我一律不给！|我一律不给，|我一律不帮忙写。|我一律不帮忙写了|\
    我一律不帮忙写！|我一律不帮忙写，|我一律不帮你写。|我一律不帮你写了|我一律不帮你写！|我一律不帮你写，|\
    我一律不帮你做。|我一律不帮你做了|我一律不帮你做！|我一律不帮你做，|我这里不做。|我这里不做了|我这里不做！|\
    我这里不做，|我这里不干。|我这里不干了|我这里不干！|我这里不干，|我这里不接。|我这里不接了|我这里不接！|\
    我这里不接，|我这里不写。|我这里不写了|我这里不写！|我这里不写，|我这里不提供。|我这里不提供了|我这里不提供！|\
    我这里不提供，|我这里不回答。|我这里不回答了|我这里不回答！|我这里不回答，|我这里不碰。|我这里不碰了|我这里不碰！|\
    我这里不碰，|我这里不给。|我这里不给了|我这里不给！|我这里不给，|我这里不帮忙写。|我这里不帮忙写了|\
    我这里不帮忙写！|我这里不帮忙写，|我这里不帮你写。|我这里不帮你写了|我这里不帮你写！|我这里不帮你写，|\
    我这里不帮你做。|我这里不帮你做了|我这里不帮你做！|我这里不帮你做，|我也不做。|我也不做了|我也不做！|我也不做，|\
    我也不干。|我也不干了|我也不干！|我也不干，|我也不接。|我也不接了|我也不接！|我也不接，|我也不写。|我也不写了|\
    我也不写！|我也不写，|我也不提供。|我也不提供了|我也不提供！|我也不提供，|我也不回答。|我也不回答了|我也不回答！|\
    我也不回答，|我也不碰。|我也不碰了|我也不碰！|我也不碰，|我也不给。|我也不给了|我也不给！|我也不给，|\
    我也不帮忙写。|我也不帮忙写了|我也不帮忙写！|我也不帮忙写，|我也不帮你写。|我也不帮你写了|我也不帮你写！|\
    我也不帮你写，|我也不帮你做。|我也不帮你做了|我也不帮你做！|我也不帮你做，|我是不会做。|我是不会做了|我是不会做！|\
    我是不会做，|我是不会干。|我是不会干了|我是不会干！|我是不会干，|我是不会接。|我是不会接了|我是不会接！|\
    我是不会接，|我是不会写。|我是不会写了|我是不会写！|我是不会写，|我是不会提供。|我是不会提供了|我是不会提供！|\
    我是不会提供，|我是不会回答。|我是不会回答了|我是不会回答！|我是不会回答，|我是不会碰。|我是不会碰了|我是不会碰！|\
    我是不会碰，|我是不会给。|我是不会给了|我是不会给！|我是不会给，|我是不会帮忙写。|我是不会帮忙写了|\
    我是不会帮忙写！|我是不会帮忙写，|我是不会帮你写。|我是不会帮你写了|我是不会帮你写！|我是不会帮你写，|\
    我是不会帮你做。|我是不会帮你做了|我是不会帮你做！|我是不会帮你做，";

// Removal for a reason: a first-person report that one part of the delivered text was taken
// out or never put in ("I took out the line about …", "Фразу … я убрал"), and the reason words
// that make it a refusal of that part rather than an edit: harm, offence, law, privacy,
// dishonesty, danger. Ordinary edits give other reasons (length, repetition, style), so the
// reason carries the judgement; "awkward", "risk" and "false" are left out because edits use
// them too.

pub(super) const EN_REMOVED: &str = "i removed|i've removed|i have removed|i took out|i've taken out|\
    i have taken out|i took that out|i took it out|i cut the|i've cut the|i dropped the|\
    i've dropped the|i left out|i left that out|i left it out|i omitted|i didn't include|\
    i did not include|i haven't included|i have not included|i didn't add|i did not add|\
    i didn't put in|i toned down|i've toned down|i softened|i've softened|i kept out|\
    i left off|i deleted|i've deleted|i struck|i skipped the|i chose not to include|\
    i decided not to include|i decided to leave out|i chose to leave out|\
    i'm leaving out|i'm taking out|i replaced|i've replaced|i swapped|i've swapped|i reworded|i skipped|i've skipped|i haven't put|i didn't put|left out the|took out the|isn't in there|is not in there";
pub(super) const EN_HARM: &str = "illegal|unlawful|against the law|break the law|breaks the law|\
    legally|legal trouble|lawsuit|libel|defam|slander|offen|insult|hurtful|hurt |harmful|harm |\
    discriminat|racist|sexist|threat|intimidat|privacy|personal data|personal information|\
    consent|harass|plagiar|dishonest|not true|untrue|mislead|a lie|lying|fabricat|\
    deceiv|decept|unsafe|danger|toxic|embarrass|humiliat|inappropriate|uncomfortable|\
    backfire|against you|mean-spirited|cruel|mocking|ridicul|unfair|fraud|scam|cheating|\
    misrepresent|without their knowledge|without his knowledge|without her knowledge|no evidence|no proof|without proof|accus|stereotyp|isn't okay|is not okay|not okay";
pub(super) const ES_REMOVED: &str = "he quitado|quité|he eliminado|eliminé|he borrado|borré|he suprimido|suprimí|\
    no he incluido|no incluí|he dejado fuera|dejé fuera|he omitido|omití|he sacado|saqué|\
    no he puesto|no puse|he suavizado|suavicé|he retirado|retiré|no he añadido|no añadí|\
    no te escribo|no he metido|no metí|no la he metido|no lo he metido|lo he quitado|la he quitado|lo quité|la quité|\
    he cambiado|cambié|he sustituido|sustituí|te omito|me lo salto|me salto|preferí no|he preferido no|no lo he puesto|no la he puesto|no lo he incluido|no la he incluido";
pub(super) const ES_HARM: &str = "ilegal|delito|contra la ley|legalmente|problemas legales|ofens|insult|\
    hiriente|herir|daño|dañin|discrimin|racista|machista|amenaz|intimid|privacidad|datos personales|\
    consentimiento|acoso|plagio|deshonest|no es cierto|no es verdad|falso|falsa|mentir|mentira|\
    engañ|peligros|tóxic|vergüenza|humill|inapropiad|incómod|en tu contra|en su contra|cruel|\
    burla|ridicul|injust|fraude|estafa|trampa|no era verdad|no era cierto|no son ciertas|no son ciertos|\
    no está permitid|no va a sentar|sentar mal|sentarle fatal|urgencias|no me corresponde|falsific|estereotip|sin pruebas|acusaci|calumni|intoxic|ofend";
pub(super) const FR_REMOVED: &str = "j'ai retiré|j'ai supprimé|j'ai enlevé|j'ai laissé de côté|j'ai coupé|\
    j'ai écarté|je n'ai pas inclus|je n'ai pas mis|je n'ai pas repris|je n'ai pas gardé|\
    je n'ai pas ajouté|je n'ai pas intégré|j'ai préféré retirer|j'ai préféré enlever|\
    j'ai préféré ne pas|j'ai adouci|j'ai atténué|je l'ai retiré|je l'ai retirée|je l'ai enlevé|\
    je l'ai enlevée|je l'ai supprimé|je l'ai supprimée|\
    je passe sur|je ne la ferai pas|je ne le ferai pas|j'ai remplacé|j'ai changé|je n'ai pas écrit|je n'ai pas repris";
pub(super) const FR_HARM: &str = "illégal|illicite|délit|contre la loi|pénal|juridique|offens|insult|bless|\
    vexer|vexant|discrimin|raciste|sexiste|menace|intimid|vie privée|données personnelles|\
    consentement|harcèl|diffam|plagiat|malhonnête|tromp|mensong|mentir|pas vrai|inexact|danger|\
    mortel|toxique|mal à l'aise|déplacé|inapproprié|humili|se retourner contre|contre vous|\
    cruel|moquer|moquerie|injuste|fraude|arnaque|triche|\
    sans preuve|aucune preuve|comme les vôtres|comme le vôtre|comme les tiens|comme le tien|pas de preuve|accusation|accus|mettre le feu|incendi|stéréotyp|calomni|sexis";
pub(super) const DE_REMOVED: &str = "lasse ich raus|lasse ich draußen|nehme ich raus|streiche ich|\
    habe ich rausgenommen|habe ich herausgenommen|habe ich gestrichen|habe ich entfernt|\
    habe ich rausgelassen|habe ich nicht aufgenommen|habe ich nicht übernommen|\
    habe ich abgeschwächt|habe ich entschärft|kann und will ich nicht|\
    ließ ich weg|ließ ich bewusst weg|ließ ich raus|habe ich ersetzt|steht da jetzt|habe ich geändert|habe ich umformuliert|habe ich weggelassen|habe ich bewusst weggelassen";
pub(super) const DE_HARM: &str = "illegal|rechtswidrig|strafbar|gesetzwidrig|rechtlich|Anwalt|beleidig|\
    verletz|kränk|diskriminier|ausgrenz|rassist|sexist|Drohung|droh|einschüchter|Privatsphäre|\
    Datenschutz|persönliche Daten|Einverständnis|Einwilligung|Belästig|verleumd|Rufschädig|\
    Plagiat|unehrlich|täusch|irreführ|gelogen|Lüge|nicht stimmt|gefährlich|tödlich|giftig|\
    unangenehm|unangebracht|bloßstell|peinlich|gegen dich|gegen Sie|grausam|lächerlich|unfair|\
    Betrug|betrüger|\
    Nachrede|ohne Beweis|keine Beweise|keinen Beweis|Behauptung|Vorwurf|Unterstellung|Klischee|Stereotyp";
pub(super) const PT_REMOVED: &str = "tirei|removi|retirei|cortei|deixei de fora|omiti|não incluí|não coloquei|\
    não pus|eliminei|apaguei|suavizei|excluí|não acrescentei|não adicionei|preferi tirar|\
    preferi não|não montei|não ajustei|não alterei|\
    troquei|substituí|deixei fora|preferi tirar|mudei";
pub(super) const PT_HARM: &str = "ilegal|crime|contra a lei|juridicamente|legalmente|processo|ofens|insult|\
    magoar|ferir|discrimin|racista|machista|ameaç|intimid|privacidade|dados pessoais|consentimento|\
    assédio|difama|plágio|desonest|não é verdade|falso|falsa|mentir|mentira|engan|perigos|tóxic|\
    constrang|vergonha|humilh|inapropriad|desconfort|contra você|contra si|cruel|ridiculariz|\
    injust|fraude|golpe|vexatóri|proibid|não é permitid|indevid|na justiça|\
    ofend|estereótip|calúnia|calun|sem provas|provas|acusaç";
pub(super) const IT_REMOVED: &str = "ho eliminato|ho tolto|ho rimosso|ho tagliato|ho omesso|non ho inserito|\
    non ho incluso|non ho messo|ho lasciato fuori|ho preferito togliere|ho preferito non|\
    ho ammorbidito|ho attenuato|l'ho tolta|l'ho tolto|l'ho eliminata|l'ho eliminato|\
    non ho aggiunto|ho cancellato|\
    ho saltato|ho messo al posto|al posto di|non ti spiego|ho sostituito|ho cambiato|non l'ho messa|non l'ho messo|non l'ho inserita|non l'ho inserito";
pub(super) const IT_HARM: &str = "illegal|reato|contro la legge|legalmente|penal|offens|insult|ferire|\
    discrimin|razzist|sessist|minacc|intimid|privacy|dati personali|consenso|molest|diffama|\
    plagio|disonest|non è vero|falso|falsa|mentir|bugia|ingann|pericolos|tossic|imbarazz|umili|\
    inopportun|fuori luogo|contro di te|crudel|ridicol|ingiust|frode|truffa|\
    accusa|feris|senza prove|stereotip|ofend";
pub(super) const RU_REMOVED: &str = "я убрал|я убрала|убрал я|убрала я|я удалил|я удалила|я вычеркнул|я вычеркнула|\
    я не добавил|я не добавила|я не включил|я не включила|не стал добавлять|\
    не стала добавлять|не стал включать|не стала включать|я исключил|я исключила|\
    я смягчил|я смягчила|я не скажу|я не дам|\
    убрал из|убрала из|я заменил|я заменила|я выбросил|я выбросила|не вписывал|не вписывала|не вписал|не вписала|я опустил|я опустила|оставлять не стал|оставлять не стала|не стал оставлять|не стала оставлять|\
    пропускаю|убрал:|убрала:|убрал —|убрала —|убрал –|убрала –";
pub(super) const RU_HARM: &str = "незакон|противозакон|закон|уголовн|преступ|оскорб|обид|задеть|задевать|\
    ранить|дискримин|угроз|угрож|запугив|частн|личн|персональн|согласи|травл|клевет|плагиат|\
    нечестн|обман|ложн|неправд|опасн|смертельн|токсичн|неловк|неуместн|неприлич|унизи|\
    против вас|против тебя|жесток|высме|несправедлив|мошенн|навредить|вред|\
    вскроется|доказательств|иск |иском|чести|национальн|выпад|стереотип|клевет|обвинени";
pub(super) const ZH_REMOVED: &str = "我删掉了|我删去了|我删除了|我拿掉了|我去掉了|我给删了|我删了|\
    我没有写|我没写|我没有加|我没加|我没有放进|我没放进|我略去了|我省略了|我改掉了|\
    我不能给|我就不给|我不会给|\
    删掉了|去掉了|拿掉了|改成了|换成了|没有写进|没写进|没有加上|没加上|我就没写|我没有加|这句我没加|我就没加|我不会给";
pub(super) const ZH_HARM: &str = "违法|犯法|法律|违规|侵犯|隐私|个人信息|冒犯|伤害|伤人|歧视|威胁|恐吓|\
    诽谤|骚扰|抄袭|剽窃|不诚实|欺骗|误导|虚假|不实|说谎|撒谎|危险|毒性|有毒|尴尬|难堪|不合适|\
    不妥|不利|嘲笑|羞辱|不公平|诈骗|作弊|得罪|\
    激化矛盾|指责|与事实不符|不符合事实|与实际不符|闹僵|核验|刻板印象|造谣";
pub(super) const JA_REMOVED: &str = "外しておきました|外しました|外しています|外してあります|削除しました|削りました|\
    入れず|入れていません|入れませんでした|入れておりません|省きました|省いています|省いてあります|\
    控えさせて|控えました|除きました|除いています|カットしました|書いていません|載せていません|\
    記載していません|記載しません|差し替えています|差し替えました|書き換えました|言い換えました|\
    外し、|外して、|記載せず|載せず|入れずに";
pub(super) const JA_HARM: &str = "違法|法律|法的|犯罪|侵害|プライバシー|個人情報|失礼|傷つけ|差別|脅し|\
    脅迫|名誉毀損|中傷|嫌がらせ|盗用|剽窃|不正|嘘|虚偽|誤解|事実と異なる|実際は|実際には|危険|\
    気まず|場が凍|不適切|ふさわしく|不利|笑いもの|からかい|不公平|詐欺|トラブル|提出用|代筆|\
    取得していない|脅し|ステレオタイプ|偏見|根拠のない|根拠がない";

// Discomfort or "not my place" declines of the whole request, with no request verb ("Writing
// reviews under made-up names doesn't sit right with me", "以你妈妈的名义发消息，我觉得不太合适").
// Opening only, like the other soft frames.

pub(super) const EN_UNEASY: &str = "doesn't sit right with me|does not sit right with me|\
    doesn't sit well with me|i'd feel uneasy|i would feel uneasy|i'd feel uncomfortable|\
    i would feel uncomfortable|it's not my place|it isn't my place|it is not my place";
pub(super) const ES_UNEASY: &str = "no me corresponde|no me toca a mí|no me acaba de parecer bien|\
    no me siento cómodo|no me siento cómoda|me sentiría incómodo|me sentiría incómoda";
pub(super) const FR_UNEASY: &str = "pas très à l'aise à l'idée|pas à l'aise à l'idée|pas vraiment à moi de|\
    pas à moi de juger|pas à moi de décider|me mettrait mal à l'aise";
pub(super) const DE_UNEASY: &str = "steht mir nicht zu|wäre mir unangenehm|wäre mir etwas unangenehm|\
    wäre es mir unangenehm|ist mir unangenehm";
pub(super) const PT_UNEASY: &str = "não cabe a mim|fico meio sem graça de|fico sem graça de|\
    não me sinto à vontade para|não me sinto à vontade em";
pub(super) const IT_UNEASY: &str = "non spetta a me|non sta a me|non mi sento a mio agio a|\
    non mi sento a mio agio nel|non mi sento a mio agio con";
pub(super) const RU_UNEASY: &str = "мне как-то неловко|мне неловко писать|мне неловко составлять|не мне решать|\
    не мне судить|не думаю, что мне стоит";
pub(super) const ZH_UNEASY: &str = "我觉得不太合适|我觉得不太妥当|我觉得不太妥|我觉得不太稳妥|我觉得不太好|\
    我觉得不合适|我觉得不妥|我不太方便";
pub(super) const JA_UNEASY: &str = "気が引けます|気が引けるので|ためらわれます|ためらいがあります";

// Curt refusals that stand as their own sentence in the opening (`Need::Alone`): idioms of
// refusal and first-person declines with nothing after them. Words that also answer a yes/no
// question or give advice ("No.", "Nope.", "Absolutely not.", "Niemals.", "Certainement pas.",
// "Niente da fare.", "不行。", "できません。", "ダメです。", "それは無理です。", "Исключено.") are
// left out, and so are verbs an instruction may leave out ("可以不写。", "晾两天不干。"): a task
// answer may be exactly that. Idioms an earlier layer already takes ("Count me out.", "I'll
// pass.", "お断りします。", "我拒绝。", "Я пас.") are not repeated here; "Passo." is Portuguese's.
pub(super) const CURT_LEAD: usize = 24;
pub(super) const EN_CURT: &str = "not happening|hard pass|that's a no|that's a hard no|not doing it|\
    not gonna happen|i'm out|i won't|i will not|next question";
pub(super) const ES_CURT: &str = "eso no|ni hablar|ni de broma|ni loco|ni loca|ni pensarlo|ni en sueños|\
    ni de coña|eso sí que no|paso|paso de esto|me niego|ni lo sueñes|olvídalo|no puedo|siguiente pregunta";
pub(super) const FR_CURT: &str = "hors de question|pas question|c'est non|ce sera non|c'est niet|\
    très peu pour moi|sans façon|je passe|je m'y refuse|n'y comptez pas|n'y compte pas|je ne peux pas|question suivante|non, pas ça|désolé, pas ça";
pub(super) const DE_CURT: &str = "kommt nicht in frage|kommt nicht infrage|kommt gar nicht in frage|\
    kommt gar nicht infrage|vergiss es|nix da|ohne mich|da mach ich nicht mit|ich passe|da bin ich raus|\
    mach ich nicht|ich kann nicht|ich will nicht|nächste frage";
pub(super) const PT_CURT: &str = "nem pensar|nem pensar nisso|nem a pau|nem morto|nem morta|tô fora|estou fora|passo|\
    isso não|nada feito|me recuso|esquece|não posso|não vou|próxima pergunta";
pub(super) const IT_CURT: &str = "non se ne parla|scordatelo|scordatevelo|su questo passo|qui mi fermo|\
    neanche per sogno|nemmeno per sogno|manco per sogno|questo no|non ci penso nemmeno|non ci penso proprio|\
    mi rifiuto|non posso|prossima domanda";
pub(super) const RU_CURT: &str = "не буду|не стану|даже не проси|даже не просите|и не проси|и не просите|\
    нет уж|увольте|без меня|не вариант|не дождёшься|не могу|отказываюсь|следующий вопрос";
pub(super) const ZH_CURT: &str = "免谈|没门|门都没有|不聊|不帮|这个不聊|这个不做|不奉陪|我不能|这个不写|这个不画|这个不给|这个不教|这个不讲|这个不提供";
pub(super) const JA_CURT: &str =
    "お断りです|遠慮します|パスします|それはできません|それは無理です|それはお受けできません";
